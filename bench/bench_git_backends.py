"""git on the command line against pygit2 (the no-git fallback) for what projects do.

Builds a local repository (20 commits of 100 files, two release tags), then times through
``core.sources`` with each backend: ``list_remote``, a fresh clone + checkout of a tag (over
``file://``, which both backends treat as a transport), and a checkout of the other tag in the
existing clone. Median of three; also the cost of ``find_git``'s ``git --version`` probe.

    uv run --no-sync python bench/bench_git_backends.py
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from comfymanager.core.install import sources
from comfymanager.core.progress import CancelToken, Reporter

GIT_ENV = {
    "GIT_AUTHOR_NAME": "b",
    "GIT_AUTHOR_EMAIL": "b@example.invalid",
    "GIT_COMMITTER_NAME": "b",
    "GIT_COMMITTER_EMAIL": "b@example.invalid",
}


def make_repo(src: Path) -> None:
    env = {**os.environ, **GIT_ENV}
    subprocess.run(["git", "init", "-q", "-b", "master", str(src)], check=True)
    for c in range(20):
        for i in range(100):
            folder = src / f"pkg{i % 10}"
            folder.mkdir(exist_ok=True)
            (folder / f"m{i}.py").write_text(f"# commit {c}\n" + "x = 1\n" * 200)
        subprocess.run(["git", "-C", str(src), "add", "-A"], check=True, env=env)
        subprocess.run(["git", "-C", str(src), "commit", "-qm", f"c{c}"], check=True, env=env)
        if c in (10, 19):
            subprocess.run(["git", "-C", str(src), "tag", f"v0.{c}.0"], check=True, env=env)


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="bench-git-"))
    try:
        src = root / "src"
        src.mkdir()
        make_repo(src)
        url = src.as_uri()
        for backend in ("git", "pygit2"):
            os.environ[sources.ENV_GIT] = "pygit2" if backend == "pygit2" else ""
            sources.forget_git()
            times: dict[str, list[float]] = {
                "ls-remote": [],
                "clone+checkout": [],
                "checkout other tag": [],
            }
            for n in range(3):
                dest = root / f"{backend}{n}"
                steps = (
                    ("ls-remote", lambda: sources.list_remote(url)),
                    (
                        "clone+checkout",
                        lambda d=dest: sources.checkout(
                            url, "v0.10.0", d, stage="c", report=Reporter(), cancel=CancelToken()
                        ),
                    ),
                    (
                        "checkout other tag",
                        lambda d=dest: sources.checkout(
                            url, "v0.19.0", d, stage="c", report=Reporter(), cancel=CancelToken()
                        ),
                    ),
                )
                for name, step in steps:
                    t = time.perf_counter()
                    step()
                    times[name].append(time.perf_counter() - t)
            medians = {k: f"{statistics.median(v) * 1000:.0f} ms" for k, v in times.items()}
            print(backend, medians)
        os.environ.pop(sources.ENV_GIT, None)
        sources.forget_git()
        t = time.perf_counter()
        sources.git_works(sources.git_candidates()[0])
        print(f"find_git probe (git --version): {(time.perf_counter() - t) * 1000:.0f} ms")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
