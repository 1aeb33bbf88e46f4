"""Short project folders separate from display names (issue 15 item 4): a long unicode name gets
a short ASCII folder, every command takes the display name or the folder name, two names with
one slug get two folders, and a project made before display names (folder = name) still works."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from comfymanager.core.errors import Conflict, InvalidInput
from comfymanager.core.paths import DataPaths
from comfymanager.core.projects import (
    SLUG_MAX,
    Project,
    ProjectStore,
    base_slug,
    slug_for,
    validate_name,
)

LONG = ("Ünïcode ✨ Flux-Dev – Große Bilder für den Wettbewerb 2026 (Entwurf) " * 3)[:120].strip()


@pytest.fixture
def store(tmp_path: Path) -> ProjectStore:
    return ProjectStore(DataPaths(tmp_path / "data").ensure())


def _cli(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "comfymanager", "--data-dir", str(data), *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
        env={**__import__("os").environ, "PYTHONIOENCODING": "utf-8"},
    )


def test_a_long_unicode_name_gets_a_short_ascii_folder(store: ProjectStore) -> None:
    assert len(LONG) >= 110
    p = store.create(Project(id=LONG))
    assert p.name == LONG and p.id != LONG
    assert p.id.isascii() and len(p.id) <= SLUG_MAX and p.id.startswith("Unicode-Flux-Dev")
    assert (store.paths.projects / p.id / "project.json").is_file()
    assert [d.name for d in store.paths.projects.iterdir()] == [p.id]
    # the display name and the folder name both find it; so does the name in another case
    for typed in (LONG, p.id, LONG.lower(), f"  {LONG} "):
        assert store.resolve(typed) == p.id
        assert store.load(typed).name == LONG
    assert store.dirs(LONG).root == store.paths.projects / p.id
    listed, broken = store.list()
    assert [x.name for x in listed] == [LONG] and broken == []


def test_two_names_with_one_slug_get_two_folders_and_one_name_stays_one_project(
    store: ProjectStore,
) -> None:
    a = store.create(Project(id="Ünïcode ✨"))
    b = store.create(Project(id="Unicode !"))
    assert (a.id, b.id) == ("Unicode", "Unicode-2")
    assert store.load("Unicode !").id == "Unicode-2"
    with pytest.raises(Conflict, match="already exists"):
        store.create(Project(id="ünïcode ✨"))  # the same name in another case
    with pytest.raises(Conflict, match="already exists"):
        store.create(Project(id="unicode-2"))  # another project's folder, as Windows sees it
    # a short valid name is its own folder, as before
    assert store.create(Project(id="demo")).id == "demo"


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("CON", "CON-p"),  # a valid display name; its folder must not be the device
        ("lpt1.txt ✨", "lpt1.txt-p"),
        ("My model...", "My-model"),
        ("✨✨✨", "project"),
        ("a" * 30, "a" * SLUG_MAX),
        ("release v1.2 / final", "release-v1.2-final"),
        ("Straße & Œuvre", "Strasse-OEuvre"),
    ],
)
def test_slugs_avoid_what_windows_cannot_hold(name: str, slug: str) -> None:
    assert base_slug(validate_name(name)) == slug


def test_dedup_stays_within_the_length_and_ignores_case() -> None:
    long = "b" * 40
    assert slug_for(long, {"B" * SLUG_MAX}) == "b" * (SLUG_MAX - 2) + "-2"
    taken = {"b" * SLUG_MAX, *(f"{'b' * (SLUG_MAX - 2)}-{n}" for n in range(2, 10))}
    assert slug_for(long, taken) == "b" * (SLUG_MAX - 3) + "-10"


@pytest.mark.parametrize(
    "name", ["", "   ", "tab\tname", "line\nbreak", "bidi\u202eevil", "x" * 121]
)
def test_display_names_refuse_only_what_would_hide(name: str) -> None:
    with pytest.raises(InvalidInput):
        validate_name(name)


def test_an_old_style_project_still_loads_and_is_saved_as_version_2(store: ProjectStore) -> None:
    root = store.paths.projects / "my old project"
    root.mkdir()
    old = {"kind": "comfymanager.project", "version": 1, "id": "my old project", "port": 8190}
    (root / "project.json").write_text(json.dumps(old), encoding="utf-8")
    p = store.load("my old project")
    assert (p.id, p.name, p.display_name, p.port) == ("my old project", "my old project", "", 8190)
    store.update("my old project", port=8191)
    saved = json.loads((root / "project.json").read_text(encoding="utf-8"))
    assert saved["version"] == 2 and saved["port"] == 8191 and saved["display_name"] == ""
    with pytest.raises(Conflict, match="already exists"):
        store.check_free("My Old Project")


@pytest.mark.slow
def test_cli_takes_the_display_name(tmp_path: Path) -> None:
    data = tmp_path / "data"
    store = ProjectStore(DataPaths(data).ensure())
    p = store.create(Project(id=LONG))
    (store.paths.projects / "legacy").mkdir()
    (store.paths.projects / "legacy" / "project.json").write_text(
        json.dumps({"kind": "comfymanager.project", "version": 1, "id": "legacy"}),
        encoding="utf-8",
    )
    status = _cli(data, "status", LONG)
    assert status.returncode == 0, status.stderr
    assert f"project: {LONG}" in status.stdout and f"folder:  {p.id}" in status.stdout
    by_folder = _cli(data, "status", p.id, "--json")
    assert by_folder.returncode == 0, by_folder.stderr
    shown = json.loads(by_folder.stdout)
    assert (shown["project"], shown["name"]) == (p.id, LONG)
    listed = _cli(data, "list", "--json")
    names = sorted(x["name"] for x in json.loads(listed.stdout)["projects"])
    assert names == sorted([LONG, "legacy"])
    legacy = _cli(data, "status", "legacy")
    assert legacy.returncode == 0 and "project: legacy" in legacy.stdout
    assert "folder:" not in legacy.stdout
    missing = _cli(data, "status", "Nöpe ✨")
    assert missing.returncode == 1 and "no project named" in missing.stderr


def test_the_id_announced_before_a_create_is_the_folder_it_makes(store: ProjectStore) -> None:
    """The window keys a new project's row (and its job) by ``new_id`` before the job runs."""
    store.create(Project(id="Ünïcode ✨"))
    announced = store.new_id("Unicode ✨ zwei")
    assert announced == "Unicode-zwei"
    assert store.create(Project(id="Unicode ✨ zwei")).id == announced
    assert store.new_id("Ünïcode ✨ !") == "Unicode-2"
