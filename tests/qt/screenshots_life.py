"""Screenshots for issue 14 (a project's life in the window), taken under Xvfb from a real window
on a real data root: the list with "Update available", the History tab, the Node packs tab, the
update dialog and the adopt dialog.

Run from the repository root:
  xvfb-run -a -s "-screen 0 1400x900x24" uv run --no-sync python tests/qt/screenshots_life.py OUT
  QT_SCALE_FACTOR=2 xvfb-run -a -s "-screen 0 2800x1800x24" uv run --no-sync python \
      tests/qt/screenshots_life.py OUT -200pct
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
suffix = sys.argv[2] if len(sys.argv) > 2 else ""
tmp = Path(tempfile.mkdtemp(prefix="life-shots-"))
data = tmp / "data"
data.mkdir()
os.environ["COMFYMANAGER_DATA_DIR"] = str(data)
for var in ("COMFYMANAGER_REGISTRY", "COMFYMANAGER_NODE_DB", "HF_ENDPOINT", "COMFYMANAGER_CIVITAI"):
    os.environ[var] = "http://127.0.0.1:9/unset-in-screenshots"

from PySide6.QtWidgets import QApplication, QWidget  # noqa: E402

qapp = QApplication([])

from comfymanager.core.context import build_core_context  # noqa: E402
from comfymanager.core.install import install  # noqa: E402
from comfymanager.core.lifecycle import packs, update  # noqa: E402
from comfymanager.core.lifecycle.snapshots import take_snapshot  # noqa: E402
from comfymanager.core.progress import CancelToken, Reporter  # noqa: E402
from comfymanager.core.run.runs import project_lock  # noqa: E402
from comfymanager.ui.app_context import build_app_context, shutdown  # noqa: E402
from comfymanager.ui.dialogs.adopt_dialog import AdoptDialog  # noqa: E402
from comfymanager.ui.dialogs.update_dialog import UpdateDialog  # noqa: E402
from comfymanager.ui.main_window import MainWindow  # noqa: E402
from tests.e2e.test_lifecycle import _create, make_life_sources  # noqa: E402
from tests.fixtures.comfyui import make_fake_comfyui  # noqa: E402
from tests.fixtures.installs import make_git_install  # noqa: E402

R = Reporter()


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


def shot(widget: QWidget, name: str) -> None:
    for _ in range(30):
        qapp.processEvents()
        time.sleep(0.01)
    path = out / f"{name}{suffix}.png"
    widget.grab().save(str(path))
    print("saved", path)


# a project at v0.3.1 with two packs, then a life: a note, an update, a pack disabled
src = make_life_sources(tmp / "src")
ctx = build_core_context(data)
_create(ctx, src, "portraits")
with project_lock(ctx, "portraits"):
    take_snapshot(ctx, "portraits", "manual", note="works with my LoRA workflow", force=True)
update.update(ctx, "portraits", ref="v0.4.0", verify=False, report=R, cancel=CancelToken())
packs.set_enabled(ctx, "portraits", "ComfyUI-StablePack", False, report=R, cancel=CancelToken())
# a second project at its source's latest release: up to date
fake = make_fake_comfyui(tmp / "fake")
spec = install.ProjectSpec(name="sketches", comfyui_source=str(fake.repo), torch_backend="none")
install.create_project(ctx, spec, report=R, cancel=CancelToken())
inst = make_git_install(tmp / "ComfyUI-home", fake)

app = build_app_context(build_core_context(data))
app.open_url = lambda url: None
app.open_path = lambda path: None
win = MainWindow(app)
win.resize(1100, 760)
win.show()
watch = app.updates
assert watch is not None
watch.check_due()
wait(lambda: not watch.running and not watch.queue and watch.checks >= 2)
win.select("portraits")
wait(lambda: win.life.history.loads >= 1 and win.life.packs.loads >= 1)
win.right.setSizes([430, 140, 190])
shot(win, "life-update-available")
win.list.setCurrentIndex(win.model.index(win.model.find("sketches"), 0))
wait(lambda: win.selected() == "sketches")
shot(win, "life-details-up-to-date")
win.select("portraits")
wait(lambda: win.life.history.loads >= 2)

life = win.life
life.setCurrentWidget(life.history)
wait(lambda: life.history.tree.topLevelItemCount() >= 2)
life.history.tree.topLevelItem(0).setSelected(True)
shot(win, "life-history")

life.setCurrentWidget(life.packs)
wait(lambda: life.packs.tree.topLevelItemCount() == 2)
life.packs.tree.topLevelItem(0).setSelected(True)
shot(win, "life-packs")

dialog = UpdateDialog(app, "portraits", win)
dialog.resize(640, 460)
dialog.show()
wait(lambda: dialog.plans >= 1 and dialog.plan is not None)
shot(dialog, "life-update-dialog")
dialog.reject()

adopt = AdoptDialog(app, win, str(inst.root))
adopt.resize(820, 520)
adopt.show()
wait(lambda: adopt.plans >= 1)
shot(adopt, "life-adopt-dialog")
adopt.reject()

win.quit_done = True
shutdown(app)
win.close()
