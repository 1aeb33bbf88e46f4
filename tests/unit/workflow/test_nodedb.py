"""refresh_node_db / load_node_db against the real snapshot: folder, file://, HTTP (ETag/304,
offline fallback, nothing at all)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from comfymanager.core.workflow.nodedb import load_node_db, normalize_repo_url, refresh_node_db
from tests.fixtures.http_server import FileServer, Handler, Served
from tests.fixtures.nodedb import snapshot_dir

FILES = (
    "extension-node-map.json",
    "custom-node-list.json",
    "model-list.json",
    "github-stats.json",
)


def _serve_snapshot(server: FileServer) -> str:
    for name in FILES:
        server.add(
            f"/db/{name}",
            Served((snapshot_dir() / name).read_bytes(), content_type="application/json"),
        )

    def conditional(h: Handler, path: str) -> bool:
        served = server.files.get(path)
        if served is not None and h.headers.get("If-None-Match") == served.etag:
            h.reply(304, {"ETag": served.etag or ""})
            return True
        return False

    server.routes.append(conditional)
    return server.url("/db")


def test_folder_source_loads_fast_and_complete(tmp_path: Path) -> None:
    status = refresh_node_db(str(snapshot_dir()), tmp_path)
    assert status.state == "updated" and status.available
    start = time.perf_counter()
    db = load_node_db(tmp_path)
    elapsed = time.perf_counter() - start
    assert db is not None
    assert len(db.core) == 868 and "KSampler" in db.core
    assert len(db.packs) > 5000 and db.models_by_filename
    assert elapsed < 2.0  # measured ~0.2 s on 2 cores; generous for loaded CI machines
    again = refresh_node_db(str(snapshot_dir()), tmp_path)
    assert again.state == "cached"  # younger than a day: no copy at all


def test_file_url_source(tmp_path: Path) -> None:
    status = refresh_node_db(snapshot_dir().as_uri(), tmp_path)
    assert status.state == "updated"
    assert load_node_db(tmp_path) is not None


def test_http_etag_304_and_offline(tmp_path: Path, http_factory: Callable[[], FileServer]) -> None:
    server = http_factory()
    source = _serve_snapshot(server)
    first = refresh_node_db(source, tmp_path)
    assert first.state == "updated"
    n = len(FILES)  # the node map, the pack list, the model list, the GitHub stats
    assert len(server.gets()) == n
    cached = refresh_node_db(source, tmp_path)  # fresh: no request at all
    assert cached.state == "cached" and len(server.gets()) == n
    forced = refresh_node_db(source, tmp_path, force=True)  # conditional GETs answer 304
    assert forced.state == "not-modified"
    assert [h.status for h in server.gets()[n:]] == [304] * n
    assert all("If-None-Match" in h.headers for h in server.gets()[n:])
    stale = refresh_node_db(source, tmp_path, max_age_s=0)  # older than max age: re-checked
    assert stale.state == "not-modified" and len(server.gets()) == 3 * n
    server.close()
    offline = refresh_node_db(source, tmp_path, force=True, timeout=2)
    assert offline.state == "offline" and offline.available
    assert offline.message.startswith("offline, using cache from ")
    assert load_node_db(tmp_path) is not None


def test_changed_file_is_downloaded_again(
    tmp_path: Path, http_factory: Callable[[], FileServer]
) -> None:
    server = http_factory()
    source = _serve_snapshot(server)
    refresh_node_db(source, tmp_path)
    server.add("/db/model-list.json", Served(b'{"models": []}'))
    status = refresh_node_db(source, tmp_path, force=True)
    assert status.state == "updated"
    db = load_node_db(tmp_path)
    assert db is not None and db.models_by_filename == {}


def test_nothing_at_all(tmp_path: Path) -> None:
    status = refresh_node_db("http://127.0.0.1:9/none", tmp_path, timeout=2)
    assert status.state == "unavailable" and not status.available
    assert status.message.startswith("node database unavailable")
    assert load_node_db(tmp_path) is None
    missing = refresh_node_db(str(tmp_path / "nowhere"), tmp_path / "c2")
    assert missing.state == "unavailable" and "does not exist" in missing.message


def test_damaged_cache_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "extension-node-map.json").write_text("{broken")
    assert load_node_db(tmp_path) is None


def test_github_urls_are_one_pack() -> None:
    same = {
        normalize_repo_url(u)
        for u in (
            "https://github.com/Kijai/ComfyUI-KJNodes",
            "https://github.com/kijai/comfyui-kjnodes.git",
            "https://GitHub.com/kijai/ComfyUI-KJNodes/",
            "git@github.com:kijai/ComfyUI-KJNodes.git",
            "http://www.github.com/kijai/ComfyUI-KJNodes",
        )
    }
    assert same == {"https://github.com/kijai/comfyui-kjnodes"}
