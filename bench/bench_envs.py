"""Second-project cost: comfymanager (uv, shared cache) against python -m venv + pip.

Builds a stand-in ComfyUI repository whose requirements.txt is ComfyUI's real requirement set
(torch from a local CPU wheel: the PyTorch index is not reachable here; torchvision/torchaudio
have no CPU wheel on PyPI and are left out), creates one project to warm uv's cache, then times a
second project made through the real install code and measures the extra disk it takes (du
counts hard-linked files once). The same requirements are then installed with venv + pip, also
with a warm pip cache (a first pip run fills it; the second is timed).

    uv run --no-sync python bench/bench_envs.py [--torch-wheel PATH] [--out DIR]
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from comfymanager.core.context import build_core_context
from comfymanager.core.install import install
from comfymanager.core.progress import CancelToken, Reporter
from tests.fixtures.comfyui import git, make_fake_comfyui

COMFYUI_REQUIREMENTS = """\
comfyui-frontend-package
comfyui-workflow-templates
comfyui-embedded-docs
torchsde
numpy>=1.25.0
einops
transformers>=4.50.3
tokenizers>=0.13.3
sentencepiece
safetensors>=0.4.2
aiohttp>=3.11.8
yarl>=1.18.0
pyyaml
Pillow
scipy
tqdm
psutil
alembic
SQLAlchemy
av>=14.2.0
kornia>=0.7.1
spandrel
soundfile
pydantic~=2.0
pydantic-settings~=2.0
"""


def du(path: Path) -> int:
    out = subprocess.run(["du", "-sb", str(path)], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[0])


def du_many(paths: list[Path]) -> int:
    out = subprocess.run(
        ["du", "-scb", *map(str, paths)], capture_output=True, text=True, check=True
    )
    return int(out.stdout.strip().splitlines()[-1].split()[0])


def main() -> None:
    ap = argparse.ArgumentParser()
    wheels = glob.glob("/opt/wheels/torch-*.whl")
    ap.add_argument("--torch-wheel", default=wheels[0] if wheels else "")
    ap.add_argument("--out", default="")
    ap.add_argument("--skip-pip", action="store_true", help="only the comfymanager side")
    args = ap.parse_args()
    root = Path(args.out or tempfile.mkdtemp(prefix="bench-envs-"))
    fake = make_fake_comfyui(root / "src")
    reqs = COMFYUI_REQUIREMENTS
    if args.torch_wheel:
        reqs = f"torch @ {Path(args.torch_wheel).as_uri()}\n" + reqs
    (fake.repo / "requirements.txt").write_text(reqs)
    git(fake.repo, "commit", "-qam", "real requirement set")
    git(fake.repo, "tag", "v0.9.0")
    os.environ["COMFYMANAGER_COMFYUI_SOURCE"] = str(fake.repo)
    ctx = build_core_context(root / "data")

    stage_times: dict[str, float] = {}

    def create(name: str) -> float:
        t0 = time.perf_counter()
        marks: list[tuple[str, float]] = []

        def on_progress(p: object) -> None:
            stage = getattr(p, "stage", "")
            if not marks or marks[-1][0] != stage:
                marks.append((stage, time.perf_counter()))

        install.create_project(
            ctx,
            install.ProjectSpec(name=name, torch_backend="none"),
            report=Reporter(progress=on_progress),
            cancel=CancelToken(),
        )
        end = time.perf_counter()
        stage_times.clear()
        for (stage, at), (_, nxt) in zip(marks, [*marks[1:], ("", end)], strict=True):
            stage_times[stage] = stage_times.get(stage, 0.0) + nxt - at
        return end - t0

    first = create("first")
    before = du_many([ctx.paths.projects, ctx.paths.cache])
    second = create("second")
    after = du_many([ctx.paths.projects, ctx.paths.cache])
    venv_size = du(ctx.paths.projects / "second" / "venv")
    stages = ", ".join(f"{k} {v:.2f} s" for k, v in stage_times.items())
    if args.skip_pip:
        print(
            f"first {first:.1f} s; second {second:.2f} s ({stages}); "
            f"extra disk {(after - before) / 1e6:.1f} MB"
        )
        return

    pip_root = root / "pip"
    pip_root.mkdir()
    (pip_root / "requirements.txt").write_text(reqs)
    env = {**os.environ, "PIP_CACHE_DIR": str(pip_root / "cache")}
    env.pop("VIRTUAL_ENV", None)
    pip_times = []
    for i in range(2):
        venv = pip_root / f"venv{i}"
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, env=env)
        subprocess.run(
            [
                str(venv / "bin/python"),
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                "-r",
                str(pip_root / "requirements.txt"),
                "pip",
                "requests",
            ],
            check=True,
            env=env,
        )
        pip_times.append(time.perf_counter() - t0)
    pip_size = du(pip_root / "venv1")

    mb = 1e6
    print("\n## Second project (warm cache) vs venv + pip\n")
    print(f"- first project (cold uv cache): {first:.1f} s")
    print(f"- second project, full install: {second:.2f} s ({stages})")
    print(
        f"- extra disk for the second project: {(after - before) / mb:.1f} MB "
        f"(its venv alone looks like {venv_size / mb:.0f} MB to a per-folder du)"
    )
    print(f"- python -m venv + pip install, cold pip cache: {pip_times[0]:.1f} s")
    print(
        f"- python -m venv + pip install, warm pip cache: {pip_times[1]:.1f} s, "
        f"{pip_size / mb:.0f} MB"
    )
    print(
        f"- ratio (pip warm / comfymanager second): {pip_times[1] / second:.1f}x time, "
        f"{pip_size / max(after - before, 1):.0f}x disk"
    )
    shutil.rmtree(root, ignore_errors=True) if not args.out else None


if __name__ == "__main__":
    main()
