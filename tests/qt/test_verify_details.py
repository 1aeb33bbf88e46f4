"""The node verification in the window: "Verify nodes" runs the scan in the project's own Python
as a background job (the window keeps handling events), then the details pane shows which node
types are missing and why, and the models line."""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import QTimer
from pytestqt.qtbot import QtBot

from comfymanager.core.context import build_core_context
from comfymanager.ui.app_context import shutdown
from tests.fixtures.comfyui import FakeComfyUI
from tests.fixtures.node_packs import NodePacks
from tests.fixtures.verify_project import make_scan_project
from tests.fixtures.window import make_window


def test_details_show_the_verification_after_the_background_job(
    qtbot: QtBot, data_dir: Path, fake_comfyui: FakeComfyUI, node_packs: NodePacks
) -> None:
    make_scan_project(build_core_context(data_dir).paths, "vid", fake_comfyui, node_packs)
    h = make_window(qtbot, data_dir)
    try:
        win = h.win
        win.select("vid")
        nodes = win.details.verification
        assert nodes.text() == "<b>Nodes:</b> not checked yet"
        assert "Models" not in nodes.text()
        button = win.details.buttons["verify"]
        assert button.isEnabled() and win.actions_["verify"].isEnabled()  # Project menu too

        ticks: list[float] = []  # the event loop keeps running while the scan runs
        timer = QTimer()
        timer.timeout.connect(lambda: ticks.append(time.monotonic()))
        timer.start(20)
        button.click()
        assert "checking" in nodes.text()
        assert not button.isEnabled()  # one job per project at a time
        qtbot.waitUntil(lambda: "missing" in nodes.text(), timeout=30000)
        timer.stop()
        assert len(ticks) >= 2

        text = nodes.text()
        assert "2 missing" in text and "of 10" in text
        assert (
            "FixBroken (ComfyUI-FixtureBroken failed to load: ModuleNotFoundError: "
            "No module named &#x27;missingdep&#x27;)" in text
        )
        assert "FixExitNode (ComfyUI-FixtureExit failed to load: SystemExit: 3)" in text
        # the pack's own folder (inpaint) is a store folder like the others now
        assert "<b>Models:</b> 8 models: 8 without a download address" in text
        assert "inpaint/fooocus_head.pth" in text
        tip = nodes.toolTip()
        assert "checked" in tip and "ComfyUI 0.3.2" in tip
        assert "vae/grouped_vae.safetensors: without a download address (folder from" in tip
        assert button.isEnabled()

        # the result is kept with the project: a new window shows it without a scan
        win.quit_done = True
        shutdown(h.app)
        h2 = make_window(qtbot, data_dir)
        try:
            h2.win.select("vid")
            assert "2 missing" in h2.win.details.verification.text()
        finally:
            h2.win.quit_done = True
            shutdown(h2.app)
    finally:
        if not h.win.quit_done:
            h.win.quit_done = True
            shutdown(h.app)
