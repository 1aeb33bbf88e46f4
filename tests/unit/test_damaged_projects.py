"""Every damaged state has a way out: damaged project folders and leftovers of interrupted work.

Real folders, real git, the real command line in a subprocess where a user would type it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from comfymanager.core import cleanup
from comfymanager.core.context import build_core_context
from comfymanager.core.errors import Conflict, CorruptFile, InvalidInput
from comfymanager.core.install import install
from comfymanager.core.progress import Reporter
from comfymanager.core.projects import DamagedProject, Project, ProjectStore
from tests.fixtures.comfyui import FakeComfyUI, cli, git

NO_PROJECT = "There is no project named"


def half_created(data_dir: Path, name: str = "p") -> Path:
    """What a kill between the folders and the first save leaves."""
    root = data_dir / "projects" / name
    for sub in ("logs", "input", "output", "user", "temp"):
        (root / sub).mkdir(parents=True)
    return root


def test_a_folder_without_project_json_is_damaged_not_missing(data_dir: Path) -> None:
    half_created(data_dir)
    store = ProjectStore(build_core_context(data_dir).paths)
    with pytest.raises(DamagedProject) as err:
        store.load("p")
    assert "Project 'p' is damaged: project.json is missing" in err.value.message
    assert "comfymanager repair p" in (err.value.fix or "")
    assert "comfymanager delete p --yes" in (err.value.fix or "")
    projects, broken = store.list()
    assert projects == [] and [(b.id, b.damaged) for b in broken] == [("p", True)]
    assert "stopped while creating" in broken[0].reason


@pytest.mark.allow_error_log
def test_unparsable_file_without_backup_stays_damaged_with_the_same_cause(data_dir: Path) -> None:
    root = half_created(data_dir)
    (root / "project.json").write_text('{"kind": "comfymanager.project", "vers')
    store = ProjectStore(build_core_context(data_dir).paths)
    for _ in range(2):  # the first read sets the file aside; the cause must not change after
        [b] = store.list()[1]
        assert (
            b.damaged
            and "could not be parsed and was set aside as project.json.corrupt-" in b.reason
        )


def test_a_backup_repairs_silently(data_dir: Path) -> None:
    store = ProjectStore(build_core_context(data_dir).paths)
    store.create(Project(id="p", torch_backend="none"))
    store.update("p", port=4500)
    (data_dir / "projects" / "p" / "project.json").write_text("garbage")
    assert store.load("p").port is None  # the .bak: the file before the last save
    assert store.list()[1] == []


def test_newer_file_and_invalid_names_are_listed_but_not_rebuilt(data_dir: Path) -> None:
    ctx = build_core_context(data_dir)
    store = ProjectStore(ctx.paths)
    root = half_created(data_dir, "future")
    (root / "project.json").write_text(
        json.dumps({"kind": "comfymanager.project", "version": 99, "id": "future"})
    )
    half_created(data_dir, "bad name!")
    broken = {b.id: b for b in store.list()[1]}
    assert not broken["future"].damaged and "newer comfymanager" in broken["future"].reason
    assert not broken["bad name!"].damaged and "cannot be a folder" in broken["bad name!"].reason
    with pytest.raises(CorruptFile) as err:
        install.install_project(ctx, "future", report=Reporter(), cancel=install.CancelToken())
    assert "newer comfymanager" in err.value.message
    assert (root / "project.json").exists()  # never downgraded nor overwritten
    with pytest.raises(InvalidInput):
        install.install_project(ctx, "bad name!", report=Reporter(), cancel=install.CancelToken())
    install.delete_project(ctx, "bad name!")  # a hand-made folder can still be deleted
    assert not (data_dir / "projects" / "bad name!").exists()


def test_create_names_the_damaged_project(data_dir: Path) -> None:
    ctx = build_core_context(data_dir)
    half_created(data_dir)
    with pytest.raises(Conflict) as err:
        install.validate_spec(ctx, install.ProjectSpec(name="p", torch_backend="none"))
    assert "'p' exists but is damaged: project.json is missing" in err.value.message
    assert "repair p" in (err.value.fix or "") and "delete p --yes" in (err.value.fix or "")
    (data_dir / "projects" / "empty").mkdir()  # nothing written at all: simply reused
    install.validate_spec(ctx, install.ProjectSpec(name="empty", torch_backend="none"))


def test_rebuild_prefers_the_document_an_interrupted_save_left(data_dir: Path) -> None:
    ctx = build_core_context(data_dir)
    store = ProjectStore(ctx.paths)
    store.create(Project(id="p", torch_backend="none", port=4321, launch_args=["--lowvram"]))
    root = data_dir / "projects" / "p"
    # a kill between the temp file's fsync and the replace: the complete document is the temp
    (root / "project.json").rename(root / ".project.json.k2x9a_1q.tmp")
    with pytest.raises(DamagedProject) as err:
        store.load("p")
    assert "stopped while saving" in err.value.cause
    lines: list[str] = []
    rebuilt = install.rebuild_project(ctx, store, err.value, Reporter(log=lines.append))
    assert (rebuilt.torch_backend, rebuilt.port, rebuilt.launch_args) == (
        "none",
        4321,
        ["--lowvram"],
    )
    assert store.load("p").port == 4321
    assert "rebuilt from the copy an interrupted save left" in lines[0]


def test_rebuild_from_disk_keeps_the_checked_out_comfyui_and_packs(
    data_dir: Path, fake_comfyui: FakeComfyUI, tmp_path: Path
) -> None:
    ctx = build_core_context(data_dir)
    store = ProjectStore(ctx.paths)
    root = half_created(data_dir)
    git(root, "clone", "-q", str(fake_comfyui.repo), "ComfyUI")
    git(root / "ComfyUI", "checkout", "-q", fake_comfyui.tags["v0.3.1"])
    pack_src = tmp_path / "pack-src"
    pack_src.mkdir()
    git(pack_src, "init", "-q")
    (pack_src / "__init__.py").write_text("NODE_CLASS_MAPPINGS = {}\n")
    git(pack_src, "add", ".")
    git(pack_src, "commit", "-qm", "pack")
    git(root / "ComfyUI" / "custom_nodes", "clone", "-q", str(pack_src), "my-pack")
    with pytest.raises(DamagedProject) as err:
        store.load("p")
    rebuilt = install.rebuild_project(ctx, store, err.value, Reporter())
    assert rebuilt.comfyui_source == str(fake_comfyui.repo)
    assert rebuilt.comfyui_commit == rebuilt.comfyui_ref == fake_comfyui.tags["v0.3.1"]
    assert [(pk.folder, pk.url) for pk in rebuilt.packs] == [("my-pack", str(pack_src))]
    assert rebuilt.install.status == "new" and rebuilt.install.stages_done == []
    assert store.list()[1] == []


@pytest.mark.slow
def test_the_command_line_has_a_way_out_of_a_damaged_project(project_data_dir: Path) -> None:
    half_created(project_data_dir)
    listed = cli(project_data_dir, "list")
    assert "Damaged" in listed.stdout and "repair p" in listed.stdout
    as_json = json.loads(cli(project_data_dir, "list", "--json").stdout)
    assert as_json["broken"][0]["damaged"] is True and "repair" in as_json["broken"][0]["fix"]
    for args in (
        ("status", "p"),
        ("start", "p"),
        ("stop", "p"),
        ("create", "p", "--torch-backend", "none"),
    ):
        out = cli(project_data_dir, *args, check=False)
        assert out.returncode == 1, args
        assert "damaged" in out.stderr and "repair p" in out.stderr, (args, out.stderr)
        assert NO_PROJECT not in out.stderr
    assert "--yes" in cli(project_data_dir, "delete", "p", check=False).stderr
    cli(project_data_dir, "delete", "p", "--yes")
    assert not (project_data_dir / "projects" / "p").exists()
    gone = cli(project_data_dir, "status", "p", check=False)
    assert gone.returncode == 1 and NO_PROJECT in gone.stderr


# --- leftovers of interrupted operations -------------------------------------------------------


def age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then), follow_symlinks=False)


def leftovers_fixture(data_dir: Path) -> dict[str, Path]:
    ctx = build_core_context(data_dir)
    store = ctx.store
    (store / "checkpoints").mkdir(parents=True)
    trash = ctx.paths.projects / ".deleting-old-1700000000"
    (trash / "venv" / "lib").mkdir(parents=True)
    (trash / "venv" / "lib" / "torch.so").write_bytes(b"x" * 200_000)
    files = {
        "trash": trash,
        "old_tmp": data_dir / ".settings.json.a1b2c3d4.tmp",
        "old_project_tmp": ctx.paths.projects / "p" / ".run.json.12345.tmp",
        "old_sidecar_tmp": store / "checkpoints" / ".x.safetensors.part.json.zz99yy88.tmp",
        "young_tmp": data_dir / ".downloads.json.q1w2e3r4.tmp",  # maybe a save in progress
        "part": store / "checkpoints" / "x.safetensors.part",  # resumes: never ours
        "sidecar": store / "checkpoints" / "x.safetensors.part.json",
        "users_tmp": store / "checkpoints" / ".notes.txt.tmp",  # not one of ours
    }
    (ctx.paths.projects / "p").mkdir(parents=True)
    for key, path in files.items():
        if key != "trash":
            path.write_bytes(b"t" * 100)
            if key != "young_tmp":
                age(path, 3600)
    return files


def test_leftovers_are_found_measured_and_removed_and_nothing_else(data_dir: Path) -> None:
    files = leftovers_fixture(data_dir)
    ctx = build_core_context(data_dir)
    found = {item.path: item for item in cleanup.find_leftovers(ctx.paths, ctx.store)}
    ours = {files[k] for k in ("trash", "old_tmp", "old_project_tmp", "old_sidecar_tmp")}
    assert set(found) == ours
    assert found[files["trash"]].kind == "interrupted delete"
    assert cleanup.leftover_bytes(ctx.paths, ctx.store) == 200_000 + 3 * 100
    result = cleanup.sweep(ctx.paths, ctx.store)
    assert (result.removed, result.freed, result.failed) == (4, 200_300, ())
    assert not any(p.exists() for p in ours)
    for key in ("young_tmp", "part", "sidecar", "users_tmp"):
        assert files[key].exists(), key
    assert cleanup.find_leftovers(ctx.paths, ctx.store) == []


def test_one_sweep_at_a_time(data_dir: Path) -> None:
    from filelock import FileLock

    files = leftovers_fixture(data_dir)
    ctx = build_core_context(data_dir)
    with FileLock(str(ctx.paths.locks / "cleanup.lock")):
        assert cleanup.sweep(ctx.paths, ctx.store).removed == 0
    assert files["trash"].exists()


def test_models_command_shows_the_leftovers(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from comfymanager.cli import main

    leftovers_fixture(data_dir)
    assert main(["--data-dir", str(data_dir), "models"]) == 0
    err = capsys.readouterr().err
    assert "Left over from interrupted operations: 200.3 KB, being removed" in err


@pytest.mark.slow
def test_a_command_starts_the_clean_up_without_waiting_for_it(data_dir: Path) -> None:
    files = leftovers_fixture(data_dir)
    started = time.monotonic()
    listed = cli(data_dir, "list")
    took = time.monotonic() - started
    assert "p" in listed.stdout  # the command did its own work
    assert not files["old_tmp"].exists()  # temp files go at once
    deadline = time.monotonic() + 30
    while files["trash"].exists() and time.monotonic() < deadline:  # trees: a detached process
        time.sleep(0.05)
    assert not files["trash"].exists()
    assert files["part"].exists() and files["young_tmp"].exists()
    assert took < 10  # generous for a loaded machine: the tree removal is not waited for
    assert "removed the leftover" in (data_dir / "logs" / "cleanup.log").read_text()


def test_a_read_error_is_listed_as_unreadable_never_as_damaged(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import builtins
    import errno

    store = ProjectStore(build_core_context(data_dir).paths)
    store.create(Project(id="p", torch_backend="none"))
    target = data_dir / "projects" / "p" / "project.json"
    real_open = builtins.open

    def failing(file: object, *args: object, **kwargs: object) -> object:
        if isinstance(file, (str, Path)) and Path(file) == target:
            raise OSError(errno.EIO, "Input/output error", str(file))
        return real_open(file, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(builtins, "open", failing)
    [b] = store.list()[1]
    assert not b.damaged and "Input/output error" in b.reason and "left as it is" in b.fix
    monkeypatch.undo()
    assert store.load("p").torch_backend == "none"  # nothing was set aside


def test_a_delete_in_progress_elsewhere_is_left_to_its_process(data_dir: Path) -> None:
    ctx = build_core_context(data_dir)
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        busy = ctx.paths.projects / f".deleting-a-{time.time_ns()}-{live.pid}"
        (busy / "venv").mkdir(parents=True)
        # shown as left over (its size counts) but not touched while its process runs
        assert [i.path for i in cleanup.find_leftovers(ctx.paths, ctx.store)] == [busy]
        assert cleanup.sweep(ctx.paths, ctx.store).removed == 0 and busy.exists()
        live.kill()
        live.wait()
        assert cleanup.sweep(ctx.paths, ctx.store).removed == 1 and not busy.exists()
    finally:
        if live.poll() is None:
            live.kill()
            live.wait()


def test_a_delete_that_cannot_finish_still_deletes_the_project(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from comfymanager.core import fileops

    ctx = build_core_context(data_dir)
    store = ProjectStore(ctx.paths)
    store.create(Project(id="p", torch_backend="none"))
    (data_dir / "projects" / "p" / "venv").mkdir()
    (data_dir / "projects" / "p" / "venv" / "python.exe").write_bytes(b"MZ")

    def held(path: object) -> None:
        raise fileops.FileInUse(f"Could not delete {path}: it is in use by another program.")

    monkeypatch.setattr(fileops, "remove_tree", held)
    install.delete_project(ctx, "p")
    assert listed_ids(store) == []
    [left] = cleanup.find_leftovers(ctx.paths, ctx.store)
    assert left.kind == "interrupted delete" and left.size > 2
    monkeypatch.undo()
    # the same process still runs, so only a later start (another pid) would sweep it; a sweep
    # from here leaves it to its "owner", which is us: shown, not removed
    assert cleanup.sweep(ctx.paths, ctx.store).removed == 0


def listed_ids(store: ProjectStore) -> list[str]:
    projects, broken = store.list()
    return [p.id for p in projects] + [b.id for b in broken]
