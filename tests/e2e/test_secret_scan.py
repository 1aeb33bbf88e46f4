"""No secret in any output (issue 10 item 9).

Every network error path a download, a search, a registry pack or a git clone can take is
raised for real against servers on 127.0.0.1 (or an unresolvable name), with a password in the
URL, a token and a signature in its query, tokens in the keyring and ``HF_TOKEN`` in the
environment. Then everything that reaches the user is scanned for those values: the exception
text (message, fix, details, what the window shows), every progress and log line the job
reported, the application's log file and ring buffer, and the CLI's stdout and stderr.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from pytestqt.qtbot import QtBot

from comfymanager.core import log as applog
from comfymanager.core.context import build_core_context
from comfymanager.core.errors import ComfyManagerError, ErrorInfo
from comfymanager.core.install import packs, sources
from comfymanager.core.install.envs import UvRunner
from comfymanager.core.models import transfer
from comfymanager.core.models.download import DownloadRequest, download_file
from comfymanager.core.models.hosts import Endpoints
from comfymanager.core.models.manager import DownloadManager
from comfymanager.core.models.search import search_civitai, search_huggingface
from comfymanager.core.progress import CancelToken, Progress, Reporter
from comfymanager.core.projects import PackRecord, ProjectDirs
from comfymanager.core.secrets import Secrets
from tests.fixtures.hf_server import HfServer, MemoryKeyring
from tests.fixtures.http_server import FileServer, Handler, Served, make_safetensors
from tests.fixtures.registry_server import Registry

PASSWORD = "pw-Secret-7f3a9c"
QUERY_TOKEN = "qtok-Secret-5b2e81"
SIGNATURE = "sig-Secret-a41d07"
HF_KEYRING = "hf_KeyringSecret0123456789abcdef"
HF_ENV = "hf_EnvSecret0123456789abcdefghij"
CIVITAI_KEY = "civitai-Secret-99c1d2"
SECRETS = (PASSWORD, QUERY_TOKEN, SIGNATURE, HF_KEYRING, HF_ENV, CIVITAI_KEY)
MODEL = make_safetensors(64 * 1024)


def dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def signed(base: str, path: str = "/m.safetensors") -> str:
    """``base`` with a user:password, and a token and an S3 signature in the query."""
    scheme, rest = base.split("://", 1)
    return (
        f"{scheme}://alice:{PASSWORD}@{rest}{path}"
        f"?token={QUERY_TOKEN}&X-Amz-Signature={SIGNATURE}&download=true"
    )


@dataclass
class Scan:
    """Texts that reached the user, by where they were seen."""

    texts: list[tuple[str, str]] = field(default_factory=list)
    paths: set[str] = field(default_factory=set)

    def add(self, where: str, text: str | None) -> None:
        if text:
            self.texts.append((where, text))

    def add_error(self, case: str, exc: BaseException) -> None:
        assert isinstance(exc, ComfyManagerError), f"{case}: untyped {type(exc).__name__}: {exc}"
        self.paths.add(case)
        info = ErrorInfo.from_exception(exc)
        for where, text in (
            ("str", str(exc)),
            ("repr", repr(exc)),
            ("fix", exc.fix),
            ("details", getattr(exc, "details", "")),
            ("window", f"{info}\n{info.details}"),
        ):
            self.add(f"{case}: exception {where}", text)

    def leaks(self) -> list[tuple[str, str]]:
        return [(where, s) for where, text in self.texts for s in SECRETS if s in text]


@pytest.fixture
def scan() -> Scan:
    return Scan()


@pytest.fixture
def logs(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[applog.LogSetup]:
    monkeypatch.setenv("HF_TOKEN", HF_ENV)
    monkeypatch.setattr(transfer, "BACKOFF", 0.01)
    monkeypatch.setattr(transfer, "TIMEOUT", (0.3, 0.3))
    import logging

    setup = applog.setup_logging(data_dir / "logs", level=logging.DEBUG, qt_messages=False)
    yield setup
    applog.shutdown_logging()


@pytest.fixture
def secrets(memory_keyring: MemoryKeyring) -> Secrets:
    s = Secrets()
    s.set("huggingface", HF_KEYRING)
    s.set("civitai", CIVITAI_KEY)
    return s


def _reporter(scan: Scan, case: str) -> Reporter:
    def progress(p: Progress) -> None:
        scan.add(f"{case}: progress", p.message)

    def line(text: str) -> None:
        scan.add(f"{case}: job log", text)

    return Reporter(progress=progress, log=line)


def _expect_error(scan: Scan, case: str, run: Callable[[Reporter], object]) -> None:
    try:
        run(_reporter(scan, case))
    except Exception as exc:  # every path must end in a typed error: checked in add_error
        scan.add_error(case, exc)
        return
    pytest.fail(f"{case}: no error was raised")


def _bad_range(handler: Handler, path: str) -> bool:
    if path != "/bad-range.safetensors":
        return False
    handler.reply(206, {"Content-Range": "bytes 0-9/999999999"}, b"0123456789")
    return True


@pytest.mark.slow
def test_no_secret_reaches_the_user_or_the_log_on_any_network_error(
    http_factory: Callable[[], FileServer],
    hf_server: HfServer,
    registry: Registry,
    secrets: Secrets,
    logs: applog.LogSetup,
    scan: Scan,
    data_dir: Path,
    tmp_path: Path,
) -> None:
    files = http_factory()
    store = tmp_path / "store"
    dead = f"http://127.0.0.1:{dead_port()}"
    silent = socket.socket()  # accepts connections (backlog) and never answers: a timeout
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    files.routes.append(_bad_range)
    for status in (401, 403, 404, 500):
        files.add(f"/s{status}.safetensors", Served(status=status))
    loop = signed(files.base, "/loop.safetensors")
    files.add("/loop.safetensors", Served(redirect=loop))
    files.add("/m.safetensors", MODEL)
    hf_url = hf_server.add("bfl/gated", "m.safetensors", MODEL, gated_token="hf_" + "o" * 30)
    civitai = http_factory()
    civitai.add("/api/download/models/7", Served(status=401))

    def download(
        url: str, *, sha: str | None = None, size: int | None = None, ep: Endpoints | None = None
    ) -> Callable[[Reporter], object]:
        endpoints = ep or Endpoints(hf_endpoint=dead, civitai_url=dead)
        request = DownloadRequest((url,), "checkpoints", "m.safetensors", sha, size)

        def run(report: Reporter) -> object:
            return download_file(
                request,
                store=store,
                secrets=secrets,
                endpoints=endpoints,
                report=report,
                cancel=CancelToken(),
            )

        return run

    cases: dict[str, Callable[[Reporter], object]] = {
        "connection refused": download(signed(dead)),
        "DNS failure": download(signed("https://no-such-host.invalid")),
        "timeout": download(signed(f"http://127.0.0.1:{silent.getsockname()[1]}")),
        "TLS error": download(signed(files.base.replace("http://", "https://"))),
        "HTTP 401": download(signed(files.base, "/s401.safetensors")),
        "HTTP 403": download(signed(files.base, "/s403.safetensors")),
        "HTTP 404": download(signed(files.base, "/s404.safetensors")),
        "HTTP 500": download(signed(files.base, "/s500.safetensors")),
        "redirect loop": download(loop),
        "bad Range answer": download(signed(files.base, "/bad-range.safetensors"), size=10),
        "hash mismatch": download(signed(files.base), sha="0" * 64),
        "Hugging Face gated (keyring token)": download(
            hf_url, ep=Endpoints(hf_endpoint=hf_server.endpoint, civitai_url=dead)
        ),
        "Hugging Face endpoint setting with a password": download(
            "https://huggingface.co/org/repo/resolve/main/m.safetensors",
            ep=Endpoints(hf_endpoint=signed(dead, "").split("?")[0], civitai_url=dead),
        ),
        "CivitAI 401 (keyring key)": download(
            f"{civitai.base}/api/download/models/7?token={QUERY_TOKEN}",
            ep=Endpoints(hf_endpoint=dead, civitai_url=civitai.base),
        ),
        "Hugging Face search": lambda r: search_huggingface(
            "x.safetensors", endpoint=signed(dead, "").split("?")[0], token=HF_KEYRING
        ),
        "CivitAI search": lambda r: search_civitai(
            "x.safetensors",
            None,
            base_url=signed(dead, "").split("?")[0],
            api_key=CIVITAI_KEY,
            session=requests.Session(),
        ),
        "registry unreachable": lambda r: packs.registry_zip_url(
            signed(dead, "").split("?")[0], "x", "1.0.0"
        ),
        "registry HTTP 500": lambda r: packs.registry_zip_url(
            signed(files.base, "").split("?")[0], "broken", "1.0.0"
        ),
        "pack archive 404": lambda r: _install_missing_archive(registry, data_dir, tmp_path, r),
        "git clone with a password": lambda r: sources.checkout(
            signed(dead, "/o/pack.git").split("?")[0],
            "main",
            tmp_path / "clone",
            stage="packs",
            report=r,
            cancel=CancelToken(),
        ),
    }
    files.add("/nodes/broken/install", Served(status=500))
    try:
        for case, run in cases.items():
            _expect_error(scan, case, run)
    finally:
        silent.close()
    logs.file_handler.flush()
    log_text = logs.log_file.read_text(encoding="utf-8")
    scan.add("log file", log_text)
    scan.add("log ring buffer", "\n".join(logs.ring.lines()))

    # the scanner sees a secret where there is one (so a clean result means something) ...
    assert Scan([("probe", f"x {PASSWORD} y")]).leaks()
    # ... the requests with secrets did go out and were logged, masked
    assert "***" in log_text and "127.0.0.1" in log_text
    assert scan.paths == set(cases)
    leaks = scan.leaks()
    print(
        f"\nsecret scan (in-process): {len(cases)} error paths, {len(scan.texts)} outputs "
        f"scanned for {len(SECRETS)} secrets, {len(leaks)} found"
    )
    assert leaks == []


def _install_missing_archive(
    registry: Registry, data_dir: Path, tmp_path: Path, report: Reporter
) -> object:
    missing = signed(registry.base, "/zips/gone.zip")
    registry.add("gone", "1.0.0", b"", download_url=missing)
    del registry.server.files["/zips/gone-1.0.0.zip"]
    ctx = build_core_context(data_dir)
    pack = PackRecord(url="", folder="gone", version="1.0.0", registry_id="gone")
    return packs.install_pack(
        pack,
        ProjectDirs(tmp_path / "p"),
        UvRunner(ctx.paths, ctx.settings),
        report=report,
        cancel=CancelToken(),
        registry=registry.base,
    )


def _cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]), HF_TOKEN=HF_ENV)
    command = [sys.executable, "-m", "comfymanager", "--data-dir", str(data_dir), *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_no_secret_in_what_the_cli_prints(
    http_factory: Callable[[], FileServer], data_dir: Path
) -> None:
    files = http_factory()
    files.add("/m.safetensors", MODEL)
    files.add("/s403.safetensors", Served(status=403))
    files.add("/s404.safetensors", Served(status=404))
    loop = signed(files.base, "/loop.safetensors")
    files.add("/loop.safetensors", Served(redirect=loop))
    # (connection failures retry with a real back-off in a CLI run: they are covered above)
    runs = {
        "HTTP 403": [signed(files.base, "/s403.safetensors")],
        "HTTP 404": [signed(files.base, "/s404.safetensors")],
        "redirect loop": [loop],
        "hash mismatch": [signed(files.base), "--sha256", "0" * 64],
        "plain http off this machine": [signed("http://example.invalid")],
        "success": [signed(files.base)],
    }
    scan = Scan()
    for case, extra in runs.items():
        done = _cli(data_dir, "download", *extra, "--folder", "checkpoints")
        if case == "success":
            assert done.returncode == 0, done.stderr
            assert done.stdout.strip().endswith("m.safetensors")
        else:
            assert done.returncode == 1, f"{case}: {done.stdout}{done.stderr}"
            assert "error: " in done.stderr and "Traceback" not in done.stderr, done.stderr
        scan.add(f"{case}: stdout", done.stdout)
        scan.add(f"{case}: stderr", done.stderr)
    for log_file in (data_dir / "logs").glob("*.log*"):
        scan.add(f"log {log_file.name}", log_file.read_text(encoding="utf-8"))
    leaks = scan.leaks()
    print(
        f"\nsecret scan (CLI): {len(runs) - 1} error paths and a success, {len(scan.texts)} "
        f"outputs scanned for {len(SECRETS)} secrets, {len(leaks)} found"
    )
    assert leaks == []


@pytest.fixture
def manager(data_dir: Path) -> Iterator[DownloadManager]:
    m = DownloadManager(
        store=data_dir / "models",
        queue_file=data_dir / "downloads.json",
        endpoints=Endpoints("http://127.0.0.1:9/unset", "http://127.0.0.1:9/unset"),
    )
    yield m
    m.shutdown()


def test_the_download_queue_and_window_keep_no_secret_even_from_a_bug(
    qtbot: QtBot,
    http_files: FileServer,
    data_dir: Path,
    manager: DownloadManager,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A real 404 and an injected bug (a plain exception quoting the signed URL) through the
    DownloadManager: the ``failed`` signal's ErrorInfo and the queue file are masked."""
    from comfymanager.core.models import download

    http_files.add("/gone.safetensors", Served(status=404))
    failures: list[ErrorInfo] = []
    with qtbot.waitSignal(manager.failed, timeout=30000) as blocker:
        manager.add(DownloadRequest((signed(http_files.base, "/gone.safetensors"),), "vae", "a.pt"))
    failures.append(blocker.args[1])
    qtbot.waitUntil(lambda: manager.running() == 0, timeout=10000)

    def bug(*args: object, **kwargs: object) -> object:
        raise RuntimeError(f"unexpected answer from {signed(http_files.base)}")

    monkeypatch.setattr(download, "download_file", bug)
    with qtbot.waitSignal(manager.failed, timeout=30000) as blocker:
        manager.add(DownloadRequest((signed(http_files.base, "/b.safetensors"),), "vae", "b.pt"))
    failures.append(blocker.args[1])
    qtbot.waitUntil(lambda: manager.running() == 0, timeout=10000)
    manager.queue.save()

    scan = Scan()
    assert [f.kind for f in failures] == ["NotFound", "RuntimeError"]
    for info in failures:
        scan.add(f"failed signal {info.kind}", f"{info}\n{info.details}")
    for item in manager.items():
        scan.add(f"queue item {item.request.name}", item.error)
    # the queue file keeps each request's URL as given (a signed link must stay usable to
    # resume after a restart); the failure sentences it keeps are scanned
    saved = json.loads((data_dir / "downloads.json").read_text(encoding="utf-8"))
    scan.add("queue file errors", "\n".join(str(i.get("error")) for i in saved["items"]))
    assert "unexpected answer from" in failures[1].message  # the bug's text is there, masked
    assert len(scan.texts) == 5
    assert scan.leaks() == []


def test_a_cli_warning_or_a_bug_traceback_is_masked_too() -> None:
    """What the CLI prints outside its error line: a warning logged before any logging set-up
    (Python's last-resort handler) and the traceback of an unexpected exception."""
    code = (
        "from comfymanager.cli.common import guard_cli_output\n"
        "import logging\n"
        "guard_cli_output()\n"
        f"logging.getLogger('x').warning('retrying %s', {signed('https://h.example')!r})\n"
        f"raise RuntimeError({signed('https://h.example', '/bug')!r})\n"
    )
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert "retrying https://alice:***@h.example/m.safetensors?token=***" in done.stderr
    assert "RuntimeError: https://alice:***@h.example/bug?token=***" in done.stderr
    assert Scan([("stderr", done.stderr)]).leaks() == []
