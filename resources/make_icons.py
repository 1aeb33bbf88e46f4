"""Render every icon the app and the installers use from the SVG sources in ``icons/src``.

Run from the repository root after editing an SVG, then commit the outputs:

    uv run --no-sync python resources/make_icons.py

Outputs (all deterministic for a given Qt and Pillow version):
- ``icons/app/comfymanager-<N>.png`` for N in 16..512 (the small glyph below 48 px),
- ``icons/tray/tray-<state>-<N>.png`` for idle (grey), busy (amber), running (green),
- ``icons/comfymanager.ico`` (Windows, 16..256) and ``icons/comfymanager.icns`` (macOS),
- ``icons/comfymanager.svg`` (Linux hicolor ``scalable`` icon).
"""

from __future__ import annotations

import io
import os
import shutil
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PIL import Image
from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QRectF
from PySide6.QtGui import QGuiApplication, QImage, QPainter
from PySide6.QtSvg import QSvgRenderer

HERE = Path(__file__).resolve().parent
SRC = HERE / "icons" / "src"
OUT = HERE / "icons"
APP_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
SMALL_BELOW = 48  # sizes under this use the simplified glyph
TRAY_SIZES = (16, 22, 24, 32, 48, 64)
TRAY_STATES = {"idle": "#9aa0a6", "busy": "#f5a623", "running": "#2ecc71"}
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)
ICNS_SIZES = (16, 32, 64, 128, 256, 512)


def render(svg: bytes, size: int) -> QImage:
    renderer = QSvgRenderer(QByteArray(svg))
    if not renderer.isValid():
        raise SystemExit("invalid SVG source")
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(0)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    renderer.render(painter, QRectF(0, 0, size, size))
    painter.end()
    return image


def to_pil(image: QImage) -> Image.Image:
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    buffer.close()
    return Image.open(io.BytesIO(bytes(data.data()))).convert("RGBA")


def save_png(image: Image.Image, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, "PNG", optimize=True)  # Pillow writes no timestamps: stable bytes


def main() -> int:
    _app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])
    big = (SRC / "comfymanager.svg").read_bytes()
    small = (SRC / "comfymanager-small.svg").read_bytes()
    tray = (SRC / "tray.svg").read_text(encoding="utf-8")

    app_images: dict[int, Image.Image] = {}
    for size in APP_SIZES:
        app_images[size] = to_pil(render(small if size < SMALL_BELOW else big, size))
        save_png(app_images[size], OUT / "app" / f"comfymanager-{size}.png")
    for state, colour in TRAY_STATES.items():
        svg = tray.replace("BADGE_FILL", colour).encode("utf-8")
        for size in TRAY_SIZES:
            save_png(to_pil(render(svg, size)), OUT / "tray" / f"tray-{state}-{size}.png")

    ico = [app_images[s] for s in ICO_SIZES]
    ico[-1].save(
        OUT / "comfymanager.ico",
        format="ICO",
        sizes=[(s, s) for s in ICO_SIZES],
        append_images=ico[:-1],
    )
    icns = [app_images[s] for s in ICNS_SIZES]
    icns[-1].save(OUT / "comfymanager.icns", format="ICNS", append_images=icns[:-1])
    shutil.copyfile(SRC / "comfymanager.svg", OUT / "comfymanager.svg")
    print(f"wrote icons to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
