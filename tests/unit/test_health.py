"""Project health derived from real failures: a pack whose install script fails, a pack that
fails to import in the project's Python, node classes nobody provides, a model whose download got
a 404 from a local server, a damaged project file, an install that failed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from comfymanager.core import health
from comfymanager.core.context import CoreContext, build_core_context
from comfymanager.core.errors import ComfyManagerError
from comfymanager.core.install import install
from comfymanager.core.install.envs import UvRunner
from comfymanager.core.models.queue import FAILED, DownloadQueue
from comfymanager.core.progress import CancelToken, Reporter
from comfymanager.core.projects import InstallState, PackRecord, Project, ProjectStore
from comfymanager.core.verify import verify
from tests.fixtures.comfyui import FakeComfyUI, git
from tests.fixtures.http_server import FileServer
from tests.fixtures.node_packs import NodePacks
from tests.fixtures.verify_project import make_scan_project, video_workflow
from tests.unit.models.helpers import fetch


@pytest.fixture
def ctx(data_dir: Path) -> CoreContext:
    return build_core_context(data_dir)


def _failing_install_repo(root: Path) -> str:
    """A real pack repository whose install.py fails, as a pack needing a missing tool does."""
    repo = root / "ComfyUI-BadInstall"
    repo.mkdir(parents=True)
    (repo / "__init__.py").write_text("NODE_CLASS_MAPPINGS = {}\n")
    (repo / "install.py").write_text(
        "import sys\nprint('checking for nvcc...')\n"
        "sys.exit('error: nvcc not found, CUDA toolkit 12.4 is required')\n"
    )
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "pack")
    return repo.as_uri()


def test_health_from_real_failures(
    ctx: CoreContext,
    tmp_path: Path,
    fake_comfyui: FakeComfyUI,
    node_packs: NodePacks,
    http_files: FileServer,
) -> None:
    dirs = make_scan_project(ctx.paths, "vid", fake_comfyui, node_packs)
    store = ProjectStore(ctx.paths)
    # before any check: the workflows were never verified
    first = health.project_health(ctx, "vid")
    assert [p.kind for p in first.problems] == ["unverified"]
    assert first.problems[0].action == "verify"
    # a pack whose install fails, installed the way a project's packs are
    project = store.load("vid")
    bad_url = _failing_install_repo(tmp_path / "repos")
    project.packs = [PackRecord(url=bad_url, folder="ComfyUI-BadInstall")]
    install.install_packs(
        ctx, project, dirs, UvRunner(ctx.paths, ctx.settings), Reporter(), CancelToken()
    )
    project = store.load("vid")
    project.packs += [PackRecord(url="", folder="ComfyUI-FixtureBroken", status="installed")]
    store.save(project)
    # the base checkpoint's address answers 404
    missing_url = http_files.url("/models/base.safetensors")
    (dirs.workflows / "Video Flow.json").write_text(
        json.dumps(video_workflow(urls={"base": missing_url}))
    )
    queue = DownloadQueue.load(ctx.paths.downloads_file)

    def enqueue(request: object, requester: str = "") -> object:
        item, _ = queue.add(request, requester)  # type: ignore[arg-type]
        queue.save()
        return item

    verify.verify_project(ctx, "vid", Reporter(), CancelToken(), enqueue_download=enqueue)
    [item] = queue.items()
    with pytest.raises(ComfyManagerError) as failed:
        fetch(
            list(item.request.urls), ctx.store, folder=item.request.folder, name=item.request.name
        )
    queue.update(item.id, state=FAILED, error=str(failed.value))
    queue.save()

    h = health.project_health(ctx, "vid")
    assert not h.ok and h.summary == f"Needs attention ({len(h.problems)})"
    by = {(p.kind, p.subject): p for p in h.problems}
    bad = by[("pack", "ComfyUI-BadInstall")]
    assert "nvcc not found" in bad.cause and bad.action == "choose_pack"
    assert bad.cause.count("nvcc not found") == 1  # the output's last line is said once
    broken = by[("pack", "ComfyUI-FixtureBroken")]
    assert broken.cause.startswith("failed to load") and "No module named" in broken.cause
    node = by[("node", "FixBroken")]
    assert "ComfyUI-FixtureBroken" in node.cause and node.action == "choose_pack"
    download = by[("download", "checkpoints/base.safetensors")]
    assert "404" in download.cause and download.action == "retry_download"
    assert download.ref == item.id
    assert all(p.cause and p.fix and p.action in health.ACTIONS for p in h.problems)
    assert "unverified" not in {p.kind for p in h.problems}
    # the launch question names them; JSON carries the same problems
    warnings = health.launch_warnings(h)
    assert any("FixBroken" in w for w in warnings) and len(warnings) == len(h.problems)
    assert h.to_json()["problems"][0].keys() >= {"kind", "subject", "cause", "fix", "action"}
    # derived, not stored: the file arriving in the store clears the download problem
    target = ctx.store / "checkpoints" / "base.safetensors"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(b"model")
    after = health.project_health(ctx, "vid")
    assert ("download", "checkpoints/base.safetensors") not in {
        (p.kind, p.subject) for p in after.problems
    }
    assert len(after.problems) == len(h.problems) - 1
    # a download on its way is not a problem either
    target.unlink()
    queue.update(item.id, state="downloading", error="")
    queue.save()
    assert ("download", "checkpoints/base.safetensors") not in {
        (p.kind, p.subject) for p in health.project_health(ctx, "vid").problems
    }


def test_failed_install_and_damaged_project(ctx: CoreContext) -> None:
    store = ProjectStore(ctx.paths)
    store.create(
        Project(
            id="half",
            install=InstallState(
                status="failed",
                stages_done=["clone", "venv"],
                error="uv could not resolve torch==9.9",
                error_fix="Pick another torch backend.",
            ),
        )
    )
    h = health.project_health(ctx, "half")
    [p] = h.problems
    assert (p.kind, p.action) == ("install", "repair")
    assert "uv could not resolve torch" in p.cause and "torch, requirements" in p.cause
    assert p.fix == "Pick another torch backend."
    assert health.launch_warnings(h) == []  # start refuses an uninstalled project by itself
    store.dirs("half").file.write_text("{ torn")
    damaged = health.project_health(ctx, "half")
    [d] = damaged.problems
    assert (d.kind, d.action) == ("damaged", "repair") and "repair half" in d.fix


def test_a_healthy_project_is_ok(ctx: CoreContext) -> None:
    ProjectStore(ctx.paths).create(Project(id="fine", install=InstallState(status="ready")))
    h = health.project_health(ctx, "fine")
    assert h.ok and h.summary == "OK" and health.launch_warnings(h) == []
    assert h.to_json() == {"ok": True, "summary": "OK", "problems": []}


def test_a_failed_download_the_project_asked_for_is_listed_with_its_cause(
    ctx: CoreContext, http_files: FileServer
) -> None:
    from comfymanager.core.models.download import DownloadRequest

    ProjectStore(ctx.paths).create(Project(id="dl", install=InstallState(status="ready")))
    queue = DownloadQueue.load(ctx.paths.downloads_file)
    url = http_files.url("/gone/lora.safetensors")
    item, _ = queue.add(DownloadRequest(urls=(url,), folder="loras", name="l.safetensors"), "dl")
    with pytest.raises(ComfyManagerError) as failed:
        fetch(url, ctx.store, folder="loras", name="l.safetensors")
    queue.update(item.id, state=FAILED, error=str(failed.value))
    queue.save()
    [p] = health.project_health(ctx, "dl").problems
    assert (p.kind, p.subject, p.action, p.ref) == (
        "download",
        "loras/l.safetensors",
        "retry_download",
        item.id,
    )
    assert "not found (404)" in p.cause
    # another project did not ask for it: nothing to say there
    ProjectStore(ctx.paths).create(Project(id="other", install=InstallState(status="ready")))
    assert health.project_health(ctx, "other").ok
    # an unreadable queue costs the download problems, never the health
    ctx.paths.downloads_file.write_text("{ torn")
    assert health.project_health(ctx, "dl").ok
