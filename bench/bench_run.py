"""Run-layer figures: ready latency, stop latency, and kills of ``start`` tried/held.

On a project installed from the fake ComfyUI (tests/fixtures), in a temporary data root:

- ready latency: from the first moment ``/system_stats`` answers (a separate thread probes the
  port every 2 ms) to ``runs.wait_ready`` returning "running";
- stop latency: from ComfyUI's process ending (a thread watches its pid every 2 ms) to
  ``runs.stop`` returning;
- kills: the real CLI ``start`` SIGKILLed at each named point (``COMFYMANAGER_TEST_KILL_AT``),
  then the state is classified (stopped when nothing was spawned, adopted otherwise), a start
  recovers, stop leaves no process of the project. "held" counts rounds where all of that was
  true.

    uv run --no-sync python bench/bench_run.py [--runs 10] [--kill-rounds 3]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

KILL_POINTS = ("claimed", "recorded", "spawned", "updated")


def _first_answer(url: str, stop: threading.Event, out: list[float]) -> None:
    session = requests.Session()
    while not stop.is_set():
        try:
            if session.get(f"{url}/system_stats", timeout=0.2).status_code == 200:
                out.append(time.perf_counter())
                return
        except requests.RequestException:
            pass
        time.sleep(0.002)


def _exit_time(pid: int, out: list[float]) -> None:
    while True:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                break
        except psutil.NoSuchProcess:
            break
        time.sleep(0.002)
    out.append(time.perf_counter())


def _project_processes(root: Path) -> list[int]:
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        try:
            if proc.info["status"] != psutil.STATUS_ZOMBIE and any(
                str(root) in c for c in proc.info["cmdline"] or []
            ):
                found.append(proc.pid)
        except (psutil.Error, TypeError):
            continue
    return found


def latencies(ctx: object, name: str, runs_n: int) -> tuple[list[float], list[float]]:
    from comfymanager.core.run import runs

    ready: list[float] = []
    stop: list[float] = []
    for _ in range(runs_n):
        st = runs.start(ctx, name)  # type: ignore[arg-type]
        answered: list[float] = []
        halt = threading.Event()
        prober = threading.Thread(target=_first_answer, args=(st.url, halt, answered))
        prober.start()
        up = runs.wait_ready(ctx, name, timeout=60)  # type: ignore[arg-type]
        t_ready = time.perf_counter()
        halt.set()
        prober.join()
        if answered:
            ready.append(max(0.0, t_ready - answered[0]))
        assert up.pid
        ended: list[float] = []
        watcher = threading.Thread(target=_exit_time, args=(up.pid, ended))
        watcher.start()
        runs.stop(ctx, name)  # type: ignore[arg-type]
        t_stop = time.perf_counter()
        watcher.join()
        stop.append(max(0.0, t_stop - ended[0]))
    return ready, stop


def kills(data: Path, ctx: object, name: str, rounds: int) -> tuple[int, int, list[str]]:
    from comfymanager.core.errors import Conflict
    from comfymanager.core.projects import ProjectStore
    from comfymanager.core.run import runs

    store = ProjectStore(ctx.paths)  # type: ignore[attr-defined]
    proj_root = store.dirs(name).root
    tried = held = 0
    failures: list[str] = []
    env = {**os.environ}
    env.pop("VIRTUAL_ENV", None)
    for _ in range(rounds):
        for point in KILL_POINTS:
            tried += 1
            r = subprocess.run(
                [sys.executable, "-m", "comfymanager", "--data-dir", str(data), "start", name],
                env={**env, runs.KILL_AT_ENV: point},
                capture_output=True,
                text=True,
                timeout=120,
            )
            ok = r.returncode == -signal.SIGKILL
            st = runs.status(ctx, store.load(name))  # type: ignore[arg-type]
            if point in ("claimed", "recorded"):
                ok = ok and st.state == "stopped" and not _project_processes(proj_root)
                runs.start(ctx, name)  # type: ignore[arg-type]
                ok = ok and runs.wait_ready(ctx, name, timeout=60).state == "running"  # type: ignore[arg-type]
            else:
                ok = ok and st.state in ("starting", "running")
                ok = ok and runs.wait_ready(ctx, name, timeout=60).state == "running"  # type: ignore[arg-type]
                try:
                    runs.start(ctx, name)  # type: ignore[arg-type]
                    ok = False
                except Conflict:
                    pass
            runs.stop(ctx, name)  # type: ignore[arg-type]
            deadline = time.monotonic() + 10
            while _project_processes(proj_root) and time.monotonic() < deadline:
                time.sleep(0.05)
            ok = ok and not _project_processes(proj_root)
            ok = ok and runs.status(ctx, store.load(name)).state == "stopped"  # type: ignore[arg-type]
            held += ok
            if not ok:
                failures.append(point)
    return tried, held, failures


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--kill-rounds", type=int, default=3)
    args = parser.parse_args()
    from comfymanager.core.context import build_core_context
    from tests.fixtures.comfyui import create_installed, make_fake_comfyui

    with tempfile.TemporaryDirectory(prefix="bench-run-") as tmp:
        base = Path(tmp)
        os.environ["COMFYMANAGER_RUNTIME_DIR"] = str(base / "runtime")
        fake = make_fake_comfyui(base / "fake")
        os.environ["COMFYMANAGER_COMFYUI_SOURCE"] = str(fake.repo)
        data = base / "data"
        data.mkdir()
        create_installed(data, "bench")
        ctx = build_core_context(data)
        ready, stop = latencies(ctx, "bench", args.runs)
        tried, held, failed = kills(data, ctx, "bench", args.kill_rounds)

    def fmt(xs: list[float]) -> str:
        ms = sorted(x * 1000 for x in xs)
        return f"median {statistics.median(ms):.0f} ms, max {ms[-1]:.0f} ms (n={len(ms)})"

    print(f"ready latency (answer -> wait_ready returns): {fmt(ready)}")
    print(f"stop latency (ComfyUI exit -> stop returns):  {fmt(stop)}")
    print(f"kills of start tried/held: {tried}/{held}" + (f" failed at {failed}" if failed else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
