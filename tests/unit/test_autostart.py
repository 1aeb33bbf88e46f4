"""Start with the system: the login entry is written into a temporary home and removed again."""

from __future__ import annotations

import configparser
import plistlib
from pathlib import Path

import pytest

from comfymanager.core import autostart
from comfymanager.core.errors import InvalidInput

ARGV = ["/opt/My Apps/comfymanager", "--data-dir", "/data/with space"]


def test_linux_desktop_entry_written_and_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    kw = {"platform": "linux", "home": tmp_path}
    assert not autostart.is_enabled(**kw)
    autostart.enable(ARGV, **kw)
    entry = tmp_path / ".config" / "autostart" / "comfymanager.desktop"
    assert entry.is_file() and autostart.is_enabled(**kw)
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(entry)
    section = parser["Desktop Entry"]
    assert section["Type"] == "Application"
    assert section["Exec"] == '"/opt/My Apps/comfymanager" --data-dir "/data/with space"'
    autostart.disable(**kw)
    assert not entry.exists() and not autostart.is_enabled(**kw)
    autostart.disable(**kw)  # disabling twice is fine


def test_linux_honours_xdg_config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    autostart.enable(["comfymanager"], platform="linux", home=tmp_path / "home")
    assert (tmp_path / "cfg" / "autostart" / "comfymanager.desktop").is_file()
    assert not (tmp_path / "home").exists()


def test_macos_launch_agent(tmp_path: Path) -> None:
    kw = {"platform": "darwin", "home": tmp_path}
    autostart.enable(ARGV, **kw)
    plist = tmp_path / "Library" / "LaunchAgents" / "io.github.comfymanager.plist"
    data = plistlib.loads(plist.read_bytes())
    assert data["ProgramArguments"] == ARGV and data["RunAtLoad"] is True
    assert autostart.is_enabled(**kw)
    autostart.disable(**kw)
    assert not plist.exists()


def test_default_argv_runs_this_program() -> None:
    argv = autostart.default_argv()
    assert argv[1:] == ["-m", "comfymanager", "--minimized"]  # waits in the tray at login


def test_minimized_start_hides_the_window_only_when_a_tray_can_bring_it_back() -> None:
    from comfymanager.app import start_hidden

    assert start_hidden(True, True, []) is True
    assert start_hidden(True, False, []) is False  # no tray: the window is the only way in
    assert start_hidden(True, True, ["wf.json"]) is False  # files to import need the window
    assert start_hidden(False, True, []) is False


def test_percent_and_quotes_escaped() -> None:
    text = autostart.desktop_entry(["/bin/app", "100%", 'say "hi"'])
    assert 'Exec=/bin/app 100%% "say \\"hi\\""' in text


def test_unwritable_location_names_the_folder(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(autostart.ComfyManagerError) as err:
        autostart.enable(["x"], platform="linux", config_home=blocker)
    assert str(blocker) in err.value.message and "Start with the system" in (err.value.fix or "")


def test_macos_refuses_a_translocated_app_path(tmp_path: Path) -> None:
    kw = {"platform": "darwin", "home": tmp_path}
    exe = (
        "/private/var/folders/xy/T/AppTranslocation/1A2B3C4D-0000-1111-2222-333344445555/d/"
        "comfymanager.app/Contents/MacOS/comfymanager"
    )
    with pytest.raises(InvalidInput, match="App Translocation") as info:
        autostart.enable([exe, "--minimized"], **kw)
    assert "Applications" in (info.value.fix or "")
    assert not autostart.is_enabled(**kw)  # nothing was written
    good = "/Applications/comfymanager.app/Contents/MacOS/comfymanager"
    autostart.enable([good, "--minimized"], **kw)
    assert autostart.is_enabled(**kw)
