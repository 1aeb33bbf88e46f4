"""The screenshots of issue 13 (the window tells what is wrong and lets the user fix it).

Taken under Xvfb from the real window on a real data root built with the test fixtures: the
empty window, New project with a long note under the version, the plan dialog at its first size
for a 10-model workflow (sizes asked from a local HTTP server), a project that needs attention (a
pack whose repository fails, a model download that gets a 404, a node class no pack provides, a
pack that fails to load) with its checklist, the activity pane with the failed download, the
crash view and Project > Settings.

Run from the repository root (docs/screenshots/README.md has the same commands):
  xvfb-run -a -s "-screen 0 1400x900x24" uv run --no-sync python \
      tests/qt/screenshots_window.py docs/screenshots
  QT_SCALE_FACTOR=2 xvfb-run -a -s "-screen 0 2800x1800x24" uv run --no-sync python \
      tests/qt/screenshots_window.py docs/screenshots -200pct
"""

from __future__ import annotations

import json
import os
import shutil
import socket
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

from PySide6.QtWidgets import QApplication, QWidget  # noqa: E402

qapp = QApplication([])

from comfymanager.core import operations as ops  # noqa: E402
from comfymanager.core.context import build_core_context  # noqa: E402
from comfymanager.core.importer.plan import plan_import  # noqa: E402
from comfymanager.core.projects import PackRecord, ProjectStore  # noqa: E402
from comfymanager.ui.app_context import AppContext, build_app_context, shutdown  # noqa: E402
from comfymanager.ui.dialogs.new_project import NewProjectDialog  # noqa: E402
from comfymanager.ui.dialogs.project_settings import ProjectSettingsDialog  # noqa: E402
from comfymanager.ui.import_flow import ImportFlow  # noqa: E402
from comfymanager.ui.main_window import MainWindow  # noqa: E402
from tests.fixtures.comfyui import create_installed  # noqa: E402
from tests.fixtures.http_server import FileServer  # noqa: E402
from tests.fixtures.node_packs import make_node_packs, node, ui_workflow, write_workflow  # noqa: E402
from tests.fixtures.verify_project import make_scan_project  # noqa: E402


def wait(cond, timeout=60.0):  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while not cond():
        qapp.processEvents()
        time.sleep(0.02)
        if time.monotonic() > end:
            raise TimeoutError
    settle()


def settle() -> None:
    for _ in range(30):
        qapp.processEvents()
        time.sleep(0.01)


def shot(widget: QWidget, name: str) -> None:
    settle()
    path = out / f"{name}{suffix}.png"
    widget.grab().save(str(path))
    print("saved", path)


def dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def make_app() -> AppContext:
    core = build_core_context(data)
    for key in ("registry_url", "hf_endpoint", "civitai_url"):  # no host is reachable here
        setattr(core.settings, key, dead_url())
    app = build_app_context(core)
    app.open_url = lambda url: None
    app.open_path = lambda path: None
    return app


server = FileServer()

# 1. the empty window, at its first size
app = make_app()
win = MainWindow(app)
win.show()
shot(win, "empty-window")

# 1b. New project with a long note under the version (a source that cannot be listed)
new = NewProjectDialog(app, win)
new.show()
wait(lambda: new.refs is not None, 30)  # the fixture source listed first
new.source.setText(str(tmp / "mirrors" / "comfyui-source-that-was-moved-away"))
new._load_versions()
wait(lambda: "Could not list versions" in new.version_note.text(), 30)
shot(new, "new-project-long-note")
new.reject()

# 2. the plan dialog at its first size: a 10-model workflow, sizes asked by HEAD in the background
MODELS = (
    ("checkpoints", "sd_xl_base_1.0.safetensors", 69),
    ("checkpoints", "sd_xl_refiner_1.0.safetensors", 61),
    ("vae", "sdxl_vae.safetensors", 3),
    ("loras", "add-detail-xl.safetensors", 2),
    ("loras", "film-grain-xl.safetensors", 1),
    ("controlnet", "controlnet-canny-sdxl-1.0.safetensors", 25),
    ("controlnet", "controlnet-depth-sdxl-1.0.safetensors", 25),
    ("upscale_models", "4x-UltraSharp.pth", 1),
    ("clip_vision", "CLIP-ViT-H-14-laion2B-s32B-b79K.safetensors", 24),
    ("embeddings", "negative_hand-neg.pt", 1),
)
nodes = []
for i, (folder, name, tenth_mb) in enumerate(MODELS):
    url = server.add(f"/models/{name}", bytes(tenth_mb * 100_000))
    nodes.append(
        node(
            i + 1,
            "CheckpointLoaderSimple",
            [name],
            models=[{"name": name, "directory": folder, "url": url}],
        )
    )
wf = write_workflow(tmp / "SDXL portrait.json", ui_workflow(*nodes))
plan = plan_import(app.core, [wf], db=None)
flow = ImportFlow(app, win, [str(wf)])
flow._on_analyse_succeeded((None, plan))  # what the analysis worker hands over
dialog = flow.dialog
assert dialog is not None
dialog.show()
wait(lambda: not dialog.models.pending(), 30)
shot(dialog, "plan-dialog")
dialog.reject()
win.quit_done = True
shutdown(app)
win.close()

# 3. a project that needs attention: verified for real (a node class no pack provides, a pack
#    that fails to load, a checkpoint whose download gets a 404), and a pack whose repository
#    could not be cloned
packs = make_node_packs(tmp / "packs")
ctx = build_core_context(data)
store = ProjectStore(ctx.paths)
dirs = make_scan_project(ctx.paths, "sdxl-portrait", fake, packs)
gone = server.url("/stabilityai/sdxl/sd_xl_base_1.0.safetensors")
base = {"name": "sd_xl_base_1.0.safetensors", "directory": "checkpoints", "url": gone}
(dirs.workflows / "Video Flow.json").unlink()
(dirs.workflows / "Portrait.json").write_text(
    json.dumps(
        ui_workflow(
            node(1, "KSampler", [1, "fixed", 20, 8.0, "euler", "normal", 1.0]),
            node(2, "CheckpointLoaderSimple", ["sd_xl_base_1.0.safetensors"], models=[base]),
            node(3, "IPAdapterAdvanced", [1.0]),
            node(4, "FixBroken"),
            node(5, "SaveImage", ["ComfyUI"]),
        )
    )
)
p = store.load("sdxl-portrait")
p.workflows = ["Portrait.json"]
keep = {"ComfyUI-FixtureBroken"}
for rec in list(p.packs):
    if rec.folder not in keep:
        p.packs.remove(rec)
        shutil.rmtree(dirs.custom_nodes / rec.folder, ignore_errors=True)
p.packs.append(
    PackRecord(
        url="https://github.com/cubiq/ComfyUI_IPAdapter_plus",
        folder="ComfyUI_IPAdapter_plus",
        status="failed",
        error="git clone failed: fatal: unable to access "
        "'https://github.com/cubiq/ComfyUI_IPAdapter_plus/': Could not resolve host: github.com",
    )
)
store.save(p)
create_installed(data, "wan-video")
app = make_app()
win = MainWindow(app)
win.show()
ops.verify(app.core, "sdxl-portrait", enqueue_download=app.downloads.add)
item = next(i for i in app.downloads.items() if i.request.name == "sd_xl_base_1.0.safetensors")
wait(lambda: app.downloads.item(item.id).state == "failed")
app.monitor.poke()
win.select("sdxl-portrait")
wait(lambda: any(p.kind == "download" for p in win.model.get("sdxl-portrait").problems))  # type: ignore[union-attr]
win.life.setCurrentIndex(0)
shot(win, "needs-attention")
shot(win.progress, "activity-failed-download")

# 4. Project > Settings of that project
settings = ProjectSettingsDialog(app.core, "sdxl-portrait", False, win)
settings.show()
shot(settings, "project-settings")
settings.reject()

# 5. the window with a project running (the README's picture), and the app's Settings
win.select("wan-video")
app.intents.start.emit("wan-video")
wait(lambda: win.model.get("wan-video").state == "running", 90)  # type: ignore[union-attr]
settle()
shot(win, "main-window")
app.intents.stop.emit("wan-video")
wait(lambda: win.model.get("wan-video").state == "stopped", 60)  # type: ignore[union-attr]
from comfymanager.ui.dialogs.settings_dialog import SettingsDialog  # noqa: E402

app_settings = SettingsDialog(app, win)
app_settings.show()
shot(app_settings, "settings")
app_settings.reject()

# 6. the crash view: the stand-in ComfyUI crashes after starting
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
