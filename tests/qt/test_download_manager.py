"""DownloadManager with qtbot: parallel transfers, pause/resume/cancel/retry, dedupe, and a
queue that survives a restart."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from comfymanager.core.models import transfer
from comfymanager.core.models.download import DownloadRequest
from comfymanager.core.models.hosts import Endpoints
from comfymanager.core.models.manager import DownloadManager
from comfymanager.core.models.queue import DownloadQueue
from tests.fixtures.http_server import FileServer, Served, make_safetensors

SIZE = 2 * 1024 * 1024
DEAD = "http://127.0.0.1:9/unset"


@pytest.fixture
def managers(data_dir: Path) -> Iterator[list[DownloadManager]]:
    made: list[DownloadManager] = []
    yield made
    for m in made:
        m.shutdown()


def new_manager(data_dir: Path, made: list[DownloadManager], parallel: int = 3) -> DownloadManager:
    m = DownloadManager(
        store=data_dir / "models",
        queue_file=data_dir / "downloads.json",
        endpoints=Endpoints(DEAD, DEAD),
        parallel=parallel,
    )
    made.append(m)
    return m


def req(url: str, name: str) -> DownloadRequest:
    return DownloadRequest(urls=(url,), folder="loras", name=name)


def test_parallel_downloads_finish_and_dedupe(
    qtbot: QtBot, http_files: FileServer, data_dir: Path, managers: list[DownloadManager]
) -> None:
    files = {f"/{i}.safetensors": make_safetensors(SIZE, seed=i) for i in range(3)}
    for path, data in files.items():
        http_files.add(path, Served(data, rate=4 * SIZE))
    m = new_manager(data_dir, managers, parallel=2)
    progress: list[object] = []
    m.progress.connect(progress.append)
    with qtbot.waitSignal(m.all_done, timeout=30000):
        ids = [m.add(req(http_files.url(p), p[1:]), "project-a") for p in files]
        again = m.add(req(http_files.url("/0.safetensors"), "0.safetensors"), "project-b")
        assert m.running() == 2
    assert again == ids[0] and len(m.items()) == 3
    assert m.item(ids[0]).requesters == ("project-a", "project-b")
    assert [i.state for i in m.items()] == ["done"] * 3
    assert len(http_files.gets("/0.safetensors")) == 1  # one transfer for two requests
    for path, data in files.items():
        assert (data_dir / "models" / "loras" / path[1:]).read_bytes() == data
    assert progress and m.totals() == (3 * len(files["/0.safetensors"]),) * 2
    # the Models view can say which projects use each file
    from comfymanager.core.models.index import ModelIndex

    index = ModelIndex.load(data_dir / "models")
    assert index.find("loras", "0.safetensors").used_by == ("project-a", "project-b")
    assert index.find("loras", "1.safetensors").used_by == ("project-a",)


def test_pause_resume_cancel_retry(
    qtbot: QtBot,
    http_files: FileServer,
    data_dir: Path,
    managers: list[DownloadManager],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(transfer, "BACKOFF", 0.01)
    data = make_safetensors(SIZE, seed=5)
    served = http_files.add("/p.safetensors", Served(data, rate=SIZE // 2))
    m = new_manager(data_dir, managers)
    item_id = m.add(req(served, "p.safetensors"))
    part = data_dir / "models" / "loras" / "p.safetensors.part"
    qtbot.waitUntil(lambda: m.item(item_id).done > 100_000, timeout=10000)

    m.pause(item_id)
    qtbot.waitUntil(lambda: m.item(item_id).state == "paused", timeout=10000)
    kept = part.stat().st_size
    assert kept > 0
    http_files.files["/p.safetensors"].rate = None
    with qtbot.waitSignal(m.all_done, timeout=20000):
        m.resume(item_id)
    assert m.item(item_id).state == "done"
    assert http_files.gets("/p.safetensors")[-1].headers["Range"] == f"bytes={kept}-"
    assert (data_dir / "models" / "loras" / "p.safetensors").read_bytes() == data

    slow = http_files.add("/c.safetensors", Served(data, rate=SIZE // 2))
    cid = m.add(req(slow, "c.safetensors"))
    qtbot.waitUntil(lambda: m.item(cid).done > 0, timeout=10000)
    m.cancel(cid)
    qtbot.waitUntil(lambda: m.item(cid).state == "cancelled", timeout=10000)
    assert not (data_dir / "models" / "loras" / "c.safetensors.part").exists()

    http_files.add("/f.safetensors", Served(status=503))
    fid = m.add(req(http_files.url("/f.safetensors"), "f.safetensors"))
    with qtbot.waitSignal(m.failed, timeout=20000) as blocker:
        pass
    assert blocker.args[0] == fid and "503" in blocker.args[1].message
    assert "failed after 5 retries" in m.item(fid).error
    http_files.add("/f.safetensors", data)
    with qtbot.waitSignal(m.all_done, timeout=20000):
        m.retry(fid)
    assert m.item(fid).state == "done"

    # a connection that keeps breaking pauses the download; resuming continues from the part
    flaky = http_files.add("/l.safetensors", Served(data, fail_after=50_000, fail_times=99))
    lid = m.add(req(flaky, "l.safetensors"))
    with qtbot.waitSignal(m.failed, timeout=20000):
        pass
    item = m.item(lid)
    assert item.state == "paused" and "connection was lost" in item.error
    kept = (data_dir / "models" / "loras" / "l.safetensors.part").stat().st_size
    assert kept >= 50_000
    http_files.files["/l.safetensors"].fail_times = 0
    m.resume(lid)
    qtbot.waitUntil(lambda: m.item(lid).state == "done", timeout=20000)
    assert http_files.gets("/l.safetensors")[-1].headers["Range"] == f"bytes={kept}-"


def test_queue_survives_a_restart_and_resumes_from_the_part(
    qtbot: QtBot, http_files: FileServer, data_dir: Path, managers: list[DownloadManager]
) -> None:
    data = make_safetensors(SIZE, seed=9)
    url = http_files.add("/r.safetensors", Served(data, rate=SIZE // 2))
    first = new_manager(data_dir, managers)
    item_id = first.add(req(url, "r.safetensors"), "proj")
    qtbot.waitUntil(lambda: first.item(item_id).done > 100_000, timeout=10000)
    first.shutdown()  # like quitting the app mid-download
    managers.remove(first)
    on_disk = DownloadQueue.load(data_dir / "downloads.json").get(item_id)
    assert on_disk.state == "queued" and on_disk.requesters == ("proj",)
    kept = (data_dir / "models" / "loras" / "r.safetensors.part").stat().st_size
    http_files.files["/r.safetensors"].rate = None
    second = new_manager(data_dir, managers)  # starts the queued item by itself
    qtbot.waitUntil(lambda: second.item(item_id).state == "done", timeout=20000)
    assert http_files.gets("/r.safetensors")[-1].headers["Range"] == f"bytes={kept}-"
    assert (data_dir / "models" / "loras" / "r.safetensors").read_bytes() == data
