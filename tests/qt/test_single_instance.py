"""A second launch hands its files to the first over a real local socket, then exits."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QDir
from pytestqt.qtbot import QtBot

from comfymanager.ui.single_instance import (
    SingleInstance,
    decode_message,
    encode_message,
    server_name,
)

REPO = Path(__file__).resolve().parents[2]

LAUNCH = """
import json, sys
from PySide6.QtCore import QCoreApplication, QTimer
from comfymanager.ui.single_instance import SingleInstance

app = QCoreApplication([])
instance = SingleInstance()
if not instance.listen(sys.argv[1], files=sys.argv[2:]):
    print("second", flush=True)
    sys.exit(0)
print("first", flush=True)

def on_activated(files):
    print("activated " + json.dumps(files), flush=True)
    app.quit()

instance.activated.connect(on_activated)
QTimer.singleShot(30000, app.quit)
app.exec()
"""


def launch(name: str, *files: str, cwd: Path = REPO) -> subprocess.Popen[str]:
    """A real second program using SingleInstance, like a second double-click would start."""
    return subprocess.Popen(
        [sys.executable, "-c", LAUNCH, name, *files],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def instance(qtbot: QtBot) -> Iterator[SingleInstance]:
    inst = SingleInstance()
    yield inst
    inst.close()


@pytest.fixture
def name(data_dir: Path) -> str:
    return server_name(data_dir)


def test_second_launch_hands_its_file_to_the_first(
    qtbot: QtBot, instance: SingleInstance, name: str, tmp_path: Path
) -> None:
    assert instance.listen(name) is True
    workflow = tmp_path / "my workflow.json"
    workflow.write_text("{}")
    with qtbot.waitSignal(instance.activated, timeout=20000) as blocker:
        # a relative path from the second launch's own working folder arrives absolute
        second = launch(name, "my workflow.json", cwd=tmp_path)
    out, err = second.communicate(timeout=20)
    assert second.returncode == 0, err
    assert out.strip() == "second"
    assert blocker.args == [[str(workflow.resolve())]]


def test_stale_socket_from_a_crashed_instance_is_replaced(
    qtbot: QtBot, instance: SingleInstance, name: str
) -> None:
    if sys.platform == "win32":
        pytest.skip("named pipes on Windows never go stale")
    path = Path(QDir.tempPath()) / name
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(path))  # a socket file nobody accepts on: what a crash leaves behind
    dead.close()
    try:
        assert path.exists()
        assert instance.listen(name) is True
        assert instance.is_listening
        with qtbot.waitSignal(instance.activated, timeout=20000) as blocker:
            second = launch(name)
        out, _ = second.communicate(timeout=20)
        assert out.strip() == "second"
        assert blocker.args == [[]]
    finally:
        instance.close()
        path.unlink(missing_ok=True)


def test_two_launches_at_once_exactly_one_wins(name: str, tmp_path: Path) -> None:
    a = launch(name, str(tmp_path / "a.json"))
    b = launch(name, str(tmp_path / "b.json"))
    out_a, err_a = a.communicate(timeout=60)
    out_b, err_b = b.communicate(timeout=60)
    assert a.returncode == 0, err_a
    assert b.returncode == 0, err_b
    outputs = sorted([out_a.splitlines(), out_b.splitlines()])
    assert outputs[1] == ["second"]
    winner = outputs[0]
    assert winner[0] == "first"
    (handed,) = json.loads(winner[1].removeprefix("activated "))
    loser_file = "b.json" if out_a.startswith("first") else "a.json"
    assert handed == str((tmp_path / loser_file).resolve())


def test_data_roots_and_users_get_their_own_instance(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    assert server_name(one) != server_name(two)
    assert server_name(one) == server_name(tmp_path / "x" / ".." / "one")
    assert server_name(one, user="alice") != server_name(one, user="bob")
    assert server_name(one, user="al ice/x").startswith("comfymanager-al_ice_x-")


def test_message_format_is_versioned_json(tmp_path: Path) -> None:
    line = encode_message([tmp_path / "w.png"])
    assert line.endswith(b"\n")
    assert json.loads(line) == {"v": 1, "cmd": "activate", "files": [str(tmp_path / "w.png")]}
    assert decode_message(line.strip()) == [str(tmp_path / "w.png")]
    with pytest.raises(ValueError, match="version"):
        decode_message(b'{"v": 2, "cmd": "activate", "files": []}')
    with pytest.raises(ValueError, match="command"):
        decode_message(b'{"v": 1, "cmd": "quit"}')
    with pytest.raises(ValueError, match="JSON"):
        decode_message(b"hello")


def test_socket_name_fits_a_long_temp_folder(
    qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mac_tmp = "/var/folders/zz/zyxvpxvq6csfxvn_n0000000000000/T"  # a real macOS $TMPDIR shape
    user = "firstname.lastname-with-a-long-login"
    name = server_name(tmp_path, user=user, temp_dir=mac_tmp, os_name="darwin")
    assert len(f"{mac_tmp}/{name}".encode()) <= 103  # macOS sun_path is 104 bytes with NUL
    readable = server_name(tmp_path, user=user, temp_dir="/tmp", os_name="darwin")
    assert readable.startswith("comfymanager-firstname")  # kept when it fits
    assert server_name(tmp_path, user=user, temp_dir=mac_tmp, os_name="win32") == readable
    deep = "/" + "d" * 120
    assert server_name(tmp_path, user=user, temp_dir=deep, os_name="darwin").startswith("/tmp/cm-")

    if sys.platform == "win32":
        return  # named pipes: the length limit is a Unix socket one
    # and for real: a temp folder so deep that the readable name cannot be a socket here
    long_tmp = tmp_path / ("t" * max(1, 100 - len(str(tmp_path))))
    long_tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(long_tmp))
    assert QDir.tempPath().rstrip("/") == str(long_tmp)
    chosen = server_name(tmp_path, user=user)
    assert chosen != server_name(tmp_path, user=user, temp_dir="/tmp")
    too_long = SingleInstance()  # what the old readable name gave: no hand-over at all
    try:
        too_long.listen(server_name(tmp_path, user=user, temp_dir="/tmp"))
        assert not too_long.is_listening
    finally:
        too_long.close()
    inst = SingleInstance()
    try:
        assert inst.listen(chosen) and inst.is_listening
    finally:
        inst.close()
