"""The download engine against a real local HTTP server: every file in the store is complete
and verified, partial data resumes, bad answers never reach the store."""

from __future__ import annotations

import errno
import hashlib
import threading
from pathlib import Path

import pytest

from comfymanager.core.errors import Cancelled, Conflict, InvalidInput, NotFound
from comfymanager.core.models import part as part_file
from comfymanager.core.models import transfer
from comfymanager.core.models.checks import BadContent
from comfymanager.core.models.index import ModelIndex
from comfymanager.core.models.part import ConnectionLost, DiskFull, DownloadFailed
from comfymanager.core.progress import CancelToken, Progress
from tests.fixtures.http_server import FileServer, Served, make_safetensors
from tests.unit.models.helpers import fetch, sha

MODEL = make_safetensors(3 * 1024 * 1024 + 123)


def store_files(store: Path) -> list[str]:
    return sorted(
        p.relative_to(store).as_posix()
        for p in store.rglob("*")
        if p.is_file() and ".comfymanager" not in p.parts
    )


def test_download_places_a_verified_file_and_reports_bytes(
    http_files: FileServer, tmp_path: Path
) -> None:
    url = http_files.add("/m.safetensors", MODEL)
    progress: list[Progress] = []
    index = ModelIndex.load(tmp_path)
    result = fetch(url, tmp_path, sha256=sha(MODEL), progress=progress, index=index)
    target = tmp_path / "checkpoints" / "model.safetensors"
    assert result.path == target and target.read_bytes() == MODEL
    assert result.sha256 == sha(MODEL) and result.size == len(MODEL)
    assert store_files(tmp_path) == [".comfymanager-index.json", "checkpoints/model.safetensors"]
    assert any(p.stage == "downloading" and p.unit == "bytes" and p.done > 0 for p in progress)
    entry = ModelIndex.load(tmp_path).find("checkpoints", "model.safetensors")
    assert entry is not None and entry.sha256 == sha(MODEL) and entry.sources == (url,)


def test_existing_file_with_the_right_hash_is_not_downloaded_again(
    http_files: FileServer, tmp_path: Path
) -> None:
    url = http_files.add("/m.safetensors", MODEL)
    fetch(url, tmp_path, sha256=sha(MODEL), index=ModelIndex.load(tmp_path))
    again = fetch(url, tmp_path, sha256=sha(MODEL), index=ModelIndex.load(tmp_path))
    assert again.already_present and len(http_files.gets()) == 1


def test_existing_different_file_is_a_conflict_not_overwritten(
    http_files: FileServer, tmp_path: Path
) -> None:
    url = http_files.add("/m.safetensors", MODEL)
    target = tmp_path / "checkpoints" / "model.safetensors"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"other")
    with pytest.raises(Conflict, match="different file"):
        fetch(url, tmp_path, sha256=sha(MODEL))
    assert target.read_bytes() == b"other"


def test_dropped_connection_resumes_with_range_and_fetches_only_missing_bytes(
    http_files: FileServer, tmp_path: Path
) -> None:
    url = http_files.add("/m.safetensors", Served(MODEL, fail_after=1_500_000))
    result = fetch(url, tmp_path, sha256=sha(MODEL))
    gets = http_files.gets()
    assert len(gets) == 2
    # every byte that arrived before the drop is kept: the resume starts exactly there
    assert gets[1].headers["Range"] == "bytes=1500000-"
    assert gets[1].headers["If-Range"] == http_files.files["/m.safetensors"].etag
    assert gets[1].sent == len(MODEL) - 1_500_000
    assert result.path.read_bytes() == MODEL


def test_resume_across_runs_rehashes_the_prefix_and_fetches_the_rest(
    http_files: FileServer, tmp_path: Path
) -> None:
    """A run stopped mid-file (cancel) leaves .part + sidecar; the next run resumes."""
    url = http_files.add("/m.safetensors", MODEL)
    cancel = CancelToken()

    def stop_after_first_megabyte(p: Progress) -> None:
        if p.stage == "downloading" and p.done >= 1024 * 1024:
            cancel.cancel()

    from comfymanager.core.models.download import DownloadRequest, download_file
    from comfymanager.core.models.hosts import Endpoints
    from comfymanager.core.progress import Reporter

    req = DownloadRequest(
        urls=(url,), folder="checkpoints", name="model.safetensors", sha256=sha(MODEL)
    )
    transfer_progress = transfer.PROGRESS_INTERVAL
    try:
        transfer.PROGRESS_INTERVAL = 0.0
        with pytest.raises(Cancelled):
            download_file(
                req,
                store=tmp_path,
                secrets=None,
                endpoints=Endpoints(),
                report=Reporter(progress=stop_after_first_megabyte),
                cancel=cancel,
            )
    finally:
        transfer.PROGRESS_INTERVAL = transfer_progress
    part = tmp_path / "checkpoints" / "model.safetensors.part"
    kept = part.stat().st_size
    assert 0 < kept < len(MODEL)
    sidecar = part.with_name(part.name + ".json").read_text()
    assert f'"bytes_done": {kept}' in sidecar
    assert not (tmp_path / "checkpoints" / "model.safetensors").exists()
    sent_before = http_files.bytes_sent()
    progress: list[Progress] = []
    result = fetch(url, tmp_path, sha256=sha(MODEL), progress=progress)
    assert result.resumed_from == kept
    assert http_files.gets()[-1].headers["Range"] == f"bytes={kept}-"
    assert http_files.bytes_sent() - sent_before == len(MODEL) - kept
    assert any(p.stage == "checking partial file" for p in progress)
    assert result.path.read_bytes() == MODEL and not part.exists()


def _leave_part(tmp_path: Path, url: str, data: bytes, n: int, etag: str) -> Path:
    """What an interrupted run leaves behind: n bytes and a sidecar."""
    from comfymanager.core import persist
    from comfymanager.core.models.folders import url_for_log

    part = tmp_path / "checkpoints" / "model.safetensors.part"
    part.parent.mkdir(parents=True, exist_ok=True)
    part.write_bytes(data[:n])
    persist.write_json(
        part.with_name(part.name + ".json"),
        part_file.SIDECAR_KIND,
        part_file.SIDECAR_VERSION,
        {
            "url": url_for_log(url),
            "identity": "",
            "expected_size": None,
            "expected_sha256": None,
            "validator": etag,
            "bytes_done": n,
        },
    )
    return part


def test_server_ignoring_range_restarts_cleanly(http_files: FileServer, tmp_path: Path) -> None:
    url = http_files.add("/m.safetensors", Served(MODEL, ignore_range=True))
    _leave_part(tmp_path, url, MODEL, 500_000, http_files.files["/m.safetensors"].etag or "")
    result = fetch(url, tmp_path)
    assert result.path.read_bytes() == MODEL and result.resumed_from == 0
    assert http_files.gets()[0].headers["Range"] == "bytes=500000-"
    assert http_files.gets()[0].status == 200


def test_file_changed_on_server_etag_mismatch_starts_over(
    http_files: FileServer, tmp_path: Path
) -> None:
    new = make_safetensors(2 * 1024 * 1024, seed=7)
    url = http_files.add("/m.safetensors", new)
    _leave_part(tmp_path, url, MODEL, 700_000, '"old-etag"')
    result = fetch(url, tmp_path)
    assert http_files.gets()[0].headers["If-Range"] == '"old-etag"'
    assert result.path.read_bytes() == new


def test_truncated_body_is_retried_and_never_placed_short(
    http_files: FileServer, tmp_path: Path
) -> None:
    url = http_files.add("/m.safetensors", Served(MODEL, fail_after=100, fail_times=99))
    with pytest.raises(ConnectionLost) as err:
        fetch(url, tmp_path)
    assert "connection was lost" in err.value.message and "Paused at" in err.value.message
    assert "continues where it stopped" in (err.value.fix or "")
    assert not (tmp_path / "checkpoints" / "model.safetensors").exists()
    assert (tmp_path / "checkpoints" / "model.safetensors.part").exists()  # kept for a retry


def test_wrong_hash_is_not_placed_and_says_so(http_files: FileServer, tmp_path: Path) -> None:
    url = http_files.add("/m.safetensors", MODEL)
    with pytest.raises(DownloadFailed) as err:
        fetch(url, tmp_path, sha256="ab" * 32)
    assert "not the expected file" in err.value.message and sha(MODEL) in err.value.message
    assert store_files(tmp_path) == []


@pytest.mark.parametrize(
    ("served", "says"),
    [
        (Served(b"<!DOCTYPE html><html>login</html>", content_type="text/plain"), "web page"),
        (Served(b"x" * 100, content_type="text/html"), "web page"),
        (Served(b'{"error": "Unauthorized"}', content_type="text/plain"), "error message"),
        (Served(b"\xff" * 8 + b"{}" * 10), "not a valid safetensors"),
    ],
)
def test_error_pages_and_wrong_headers_are_refused(
    http_files: FileServer, tmp_path: Path, served: Served, says: str
) -> None:
    url = http_files.add("/m.safetensors", served)
    with pytest.raises(BadContent, match=says):
        fetch(url, tmp_path)
    assert not (tmp_path / "checkpoints" / "model.safetensors").exists()


def test_safetensors_with_damaged_json_header_is_refused(
    http_files: FileServer, tmp_path: Path
) -> None:
    bad = (20).to_bytes(8, "little") + b'{"a": broken json  }' + b"\0" * 100
    url = http_files.add("/m.safetensors", bad)
    with pytest.raises(BadContent, match="JSON header is damaged"):
        fetch(url, tmp_path)


def test_gguf_and_torch_headers(http_files: FileServer, tmp_path: Path) -> None:
    good = fetch(
        http_files.add("/a.gguf", b"GGUF" + b"\0" * 64),
        tmp_path,
        folder="diffusion_models",
        name="a.gguf",
    )
    assert good.path.exists()
    with pytest.raises(BadContent, match="GGUF"):
        fetch(
            http_files.add("/b.gguf", b"NOPE" + b"\0" * 64),
            tmp_path,
            folder="diffusion_models",
            name="b.gguf",
        )
    zipped = fetch(
        http_files.add("/c.pt", b"PK\x03\x04" + b"\0" * 64),
        tmp_path,
        folder="upscale_models",
        name="c.pt",
    )
    assert zipped.path.exists()
    with pytest.raises(BadContent, match="torch"):
        fetch(
            http_files.add("/d.pth", b"hello world"),
            tmp_path,
            folder="upscale_models",
            name="d.pth",
        )


def test_404_and_transient_errors(http_files: FileServer, tmp_path: Path) -> None:
    with pytest.raises(NotFound, match=r"not found \(404\): the file was removed"):
        fetch(http_files.url("/missing.safetensors"), tmp_path)
    url = http_files.add("/m.safetensors", Served(MODEL, statuses=[503, 500, 429]))
    assert fetch(url, tmp_path).path.read_bytes() == MODEL
    assert [h.status for h in http_files.gets("/m.safetensors")] == [503, 500, 429, 200]


def test_plain_http_to_a_remote_host_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="unencrypted"):
        fetch("http://example.com/x.safetensors", tmp_path)


def test_mirrors_are_tried_in_order(http_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    a, b = http_factory(), http_factory()
    result = fetch(
        [a.url("/gone.safetensors"), b.add("/m.safetensors", MODEL)], tmp_path, sha256=sha(MODEL)
    )
    assert result.path.read_bytes() == MODEL and result.url == b.url("/m.safetensors")


def test_redirect_to_another_host_drops_the_token(http_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from comfymanager.core.models.part import TransferSpec
    from comfymanager.core.progress import Reporter

    origin, other = http_factory(), http_factory()
    final = other.add("/cdn/m.safetensors", MODEL)
    origin.add("/same", Served(redirect="/m.safetensors"))
    origin.add("/m.safetensors", Served(redirect=final))
    import requests

    part = tmp_path / "checkpoints" / "m.safetensors.part"
    spec = TransferSpec(
        url=origin.url("/same"),
        part=part,
        name="m.safetensors",
        authorization="Bearer s3cret-token",
    )
    with requests.Session() as s:
        out = transfer.transfer(spec, s, Reporter(), CancelToken())
    assert out.size == len(MODEL)
    assert [h.headers.get("Authorization") for h in origin.gets()] == ["Bearer s3cret-token"] * 2
    assert [h.headers.get("Authorization") for h in other.gets()] == [None]


def test_too_many_redirects(http_files: FileServer, tmp_path: Path) -> None:
    http_files.add("/loop", Served(redirect="/loop"))
    with pytest.raises(DownloadFailed, match="Too many redirects"):
        fetch(http_files.url("/loop"), tmp_path)
    assert len(http_files.gets()) == transfer.MAX_REDIRECTS + 1


def test_not_enough_disk_space_is_refused_before_starting(
    http_files: FileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = http_files.add("/m.safetensors", MODEL)
    monkeypatch.setattr(part_file, "free_space", lambda path: 1000)
    with pytest.raises(DiskFull) as err:
        fetch(url, tmp_path)
    assert err.value.message.startswith("Not enough disk space: need 3.1 MB, 1.0 KB free on ")
    assert "choose another store folder in Settings" in (err.value.fix or "")
    leftover = tmp_path / "checkpoints" / "model.safetensors.part"
    assert not leftover.exists() or leftover.stat().st_size == 0
    # with the size known up front, the server is not even asked
    with pytest.raises(DiskFull):
        fetch(url, tmp_path, size=len(MODEL))
    assert len(http_files.gets()) == 1


def _tmpfs(path: Path, size: str) -> bool:
    import subprocess

    path.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        check=False,
    )
    return done.returncode == 0


def test_disk_full_mid_download_keeps_the_part_and_says_so(
    http_files: FileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess

    url = http_files.add("/m.safetensors", MODEL)
    monkeypatch.setattr(part_file, "free_space", lambda path: 1 << 40)  # the check says yes...
    store = tmp_path / "small"
    if _tmpfs(store, "1m"):  # ...and a real 1 MB disk fills up
        try:
            with pytest.raises(DiskFull, match="The disk is full"):
                fetch(url, store)
            assert (store / "checkpoints" / "model.safetensors.part").exists()
            assert not (store / "checkpoints" / "model.safetensors").exists()
        finally:
            subprocess.run(["umount", str(store)], check=False)
        return
    # no mount permission: the part file's writes fail with ENOSPC after 1 MB
    import os

    class FullDisk:
        def __getattr__(self, name: str) -> object:
            return getattr(os, name)

        @staticmethod
        def write(fd: int, data: bytes | memoryview) -> int:
            if os.fstat(fd).st_size + len(data) > 1024 * 1024:
                raise OSError(errno.ENOSPC, "No space left on device")
            return os.write(fd, data)

    monkeypatch.setattr(part_file, "os", FullDisk())
    with pytest.raises(DiskFull, match="The disk is full"):
        fetch(url, store)
    assert (store / "checkpoints" / "model.safetensors.part").exists()


def test_two_simultaneous_requests_for_one_file_make_one_transfer(
    http_files: FileServer, tmp_path: Path
) -> None:
    url = http_files.add("/m.safetensors", Served(MODEL, rate=8 * 1024 * 1024))
    results = []

    def run() -> None:
        results.append(fetch(url, tmp_path, sha256=sha(MODEL), index=ModelIndex.load(tmp_path)))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == 2 and len(http_files.gets()) == 1
    assert sorted(r.already_present for r in results) == [False, True]
    assert hashlib.sha256(results[0].path.read_bytes()).hexdigest() == sha(MODEL)


class _CountingHashlib:
    """hashlib as part.py sees it, counting the bytes it is asked to hash."""

    hashed = 0

    class _Sha256:
        def __init__(self) -> None:
            self._h = hashlib.sha256()

        def update(self, data: bytes | memoryview) -> None:
            _CountingHashlib.hashed += len(data)
            self._h.update(data)

        def hexdigest(self) -> str:
            return self._h.hexdigest()

    @staticmethod
    def sha256() -> _CountingHashlib._Sha256:
        return _CountingHashlib._Sha256()


def test_only_a_known_sha256_is_hashed_while_streaming(
    http_files: FileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without an expected sha256 the download does no hashing at all (full link speed); the
    store index computes it when asked. With one, every byte is verified while streaming."""
    big = make_safetensors(12 * 1024 * 1024)
    url = http_files.add("/big.safetensors", big)
    monkeypatch.setattr(part_file, "hashlib", _CountingHashlib)
    _CountingHashlib.hashed = 0
    index = ModelIndex.load(tmp_path)

    plain = fetch(url, tmp_path, name="plain.safetensors", index=index)
    assert plain.sha256 is None and plain.path.read_bytes() == big
    assert _CountingHashlib.hashed == 0
    assert index.cached_sha256("checkpoints", "plain.safetensors") is None
    assert index.sha256("checkpoints", "plain.safetensors") == sha(big)  # computed on demand

    verified = fetch(url, tmp_path, name="verified.safetensors", sha256=sha(big), index=index)
    assert verified.sha256 == sha(big) and _CountingHashlib.hashed == len(big)
    with pytest.raises(DownloadFailed, match="not the expected file"):
        fetch(url, tmp_path, name="wrong.safetensors", sha256="ab" * 32)
