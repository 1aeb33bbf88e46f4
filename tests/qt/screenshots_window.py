"""Screenshots for issue 13 (window side), taken under Xvfb from a real window on a real data root.

Run from the repository root (PNG8 with `convert in.png -colors 256 PNG8:out.png`):
  xvfb-run -a -s "-screen 0 1400x900x24" uv run --no-sync python tests/qt/screenshots_window.py OUT
  QT_SCALE_FACTOR=2 xvfb-run -a -s "-screen 0 2800x1800x24" uv run --no-sync python \
      tests/qt/screenshots_window.py OUT -200pct
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
suffix = sys.argv[2] if len(sys.argv) > 2 else ""
tmp = Path(tempfile.mkdtemp(prefix="shots-"))
data = tmp / "data"
data.mkdir()
os.environ["COMFYMANAGER_DATA_DIR"] = str(data)

from tests.fixtures.comfyui import make_fake_comfyui  # noqa: E402

fake = make_fake_comfyui(tmp / "fake")
os.environ["COMFYMANAGER_COMFYUI_SOURCE"] = str(fake.repo)

from PySide6.QtWidgets import QApplication  # noqa: E402

qapp = QApplication([])

from comfymanager.core.context import build_core_context  # noqa: E402
from comfymanager.core.models.request import DownloadRequest  # noqa: E402
from comfymanager.core.projects import PackRecord, ProjectStore  # noqa: E402
from comfymanager.ui.app_context import build_app_context, shutdown  # noqa: E402
from comfymanager.ui.main_window import MainWindow  # noqa: E402
from tests.fixtures.comfyui import create_installed  # noqa: E402
from tests.fixtures.http_server import FileServer  # noqa: E402


def wait(cond, timeout=60.0):  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while not cond():
        qapp.processEvents()
        time.sleep(0.02)
        if time.monotonic() > end:
            raise TimeoutError
    for _ in range(20):
        qapp.processEvents()
        time.sleep(0.01)


def shot(win: MainWindow, name: str) -> None:
    for _ in range(30):
        qapp.processEvents()
        time.sleep(0.01)
    path = out / f"{name}{suffix}.png"
    win.grab().save(str(path))
    print("saved", path)


def make_app():  # type: ignore[no-untyped-def]
    app = build_app_context(build_core_context(data))
    app.open_url = lambda url: None
    app.open_path = lambda path: None
    return app


# 1. the empty window
app = make_app()
win = MainWindow(app)
win.show()
shot(win, "empty-window")
win.quit_done = True
shutdown(app)
win.close()

# 2. a project that needs attention: a pack that did not install, a model nobody can
#    download (404 from a local server), a model without an address
create_installed(data, "sdxl-portrait")
create_installed(data, "wan-video")
ctx = build_core_context(data)
store = ProjectStore(ctx.paths)
p = store.load("sdxl-portrait")
p.packs = [
    PackRecord(
        url="https://github.com/cubiq/ComfyUI_IPAdapter_plus",
        folder="ComfyUI_IPAdapter_plus",
        status="failed",
        error="install.py exited with code 1: error: nvcc not found, CUDA toolkit 12.4 is required",
    )
]
p.models = [{"directory": "loras", "name": "add-detail-xl.safetensors"}]
store.save(p)
server = FileServer()
app = make_app()
win = MainWindow(app)
win.show()
item = app.downloads.add(
    DownloadRequest(
        urls=(server.url("/stabilityai/sdxl/sd_xl_base_1.0.safetensors"),),
        folder="checkpoints",
        name="sd_xl_base_1.0.safetensors",
    ),
    "sdxl-portrait",
)
wait(lambda: app.downloads.item(item).state == "failed")
app.monitor.poke()
win.select("sdxl-portrait")
wait(lambda: bool(win.model.get("sdxl-portrait").attention))  # type: ignore[union-attr]
shot(win, "needs-attention")
win.progress.grab().save(str(out / f"activity-failed-download{suffix}.png"))

# 3. the crash view: the stand-in ComfyUI crashes after starting
os.environ["FAKE_COMFYUI_MODE"] = "crash"
win.select("wan-video")
app.intents.start.emit("wan-video")
wait(lambda: win.model.get("wan-video").state == "crashed", 90)  # type: ignore[union-attr]
wait(lambda: win.details.copy_details.isVisible())
shot(win, "crash-view")
win.quit_done = True
shutdown(app)
server.close()
print(json.dumps({"data": str(data)}))
