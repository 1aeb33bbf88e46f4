"""Render every icon the app and the installers use from the SVG sources in ``icons/src``.

Run from the repository root after editing an SVG, then commit the outputs:

    uv run --no-sync python resources/make_icons.py

Outputs (all deterministic for a given Qt and Pillow version):
- ``icons/app/comfymanager-<N>.png`` for N in 16..512 (the small glyph below 48 px),
- ``icons/tray/tray-<state>-<N>.png`` for idle (a grey ring), busy (an amber diamond), running
  (a green play triangle), attention (a red exclamation mark): each badge sits in a transparent
  gap cut into the glyph, so as a macOS template image (alpha only) the states still differ by
  shape,
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
TRAY_STATES = {
    "idle": "#9aa0a6",
    "busy": "#f5a623",
    "running": "#2ecc71",
    "attention": "#e5484d",
}
# per state: the badge's SVG geometry in the 32x32 glyph's bottom right, and its stroke width
# (a ring is all stroke; a filled shape gets a thin stroke to round its corners)
TRAY_BADGES = {
    "idle": ('<circle cx="22.5" cy="22.5" r="6"', "none", 3.6),
    "busy": ('<path d="M 22.5 14 L 30.5 22.5 L 22.5 31 L 14.5 22.5 Z"', "COLOUR", 1.0),
    "running": ('<path d="M 16.5 14.5 L 30 22.5 L 16.5 30.5 Z"', "COLOUR", 1.5),
    # an exclamation mark: a bar and a dot, upright (no other badge is two parts)
    "attention": (
        '<path d="M 20 13 H 25 V 22.6 H 20 Z M 20 26.2 H 25 V 30.8 H 20 Z"',
        "COLOUR",
        1.4,
    ),
}
BADGE_GAP = 2.0  # width of the transparent gap around a badge, in glyph units
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


def _svg(element: str) -> bytes:
    head = '<svg xmlns="http://www.w3.org/2000/svg" width="32" height="32" viewBox="0 0 32 32">'
    return f"{head}{element}</svg>".encode()


def tray_icon(tray_svg: str, state: str, colour: str, size: int) -> Image.Image:
    """The glyph with a gap of the badge's shape cut out (alpha cleared), the badge inside it."""
    geometry, fill, stroke = TRAY_BADGES[state]
    fill = colour if fill == "COLOUR" else fill
    join = 'stroke-linejoin="round"/>'
    badge = f'{geometry} fill="{fill}" stroke="{colour}" stroke-width="{stroke}" {join}'
    # the gap: the badge filled (a ring's middle included) and widened by BADGE_GAP all round
    gap = f'{geometry} fill="#000" stroke="#000" stroke-width="{stroke + 2 * BADGE_GAP}" {join}'
    glyph = to_pil(render(tray_svg.encode("utf-8"), size))
    keep = Image.eval(to_pil(render(_svg(gap), size)).getchannel("A"), lambda a: 255 - a)
    glyph.putalpha(Image.composite(glyph.getchannel("A"), Image.new("L", glyph.size), keep))
    return Image.alpha_composite(glyph, to_pil(render(_svg(badge), size)))


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
        for size in TRAY_SIZES:
            save_png(
                tray_icon(tray, state, colour, size), OUT / "tray" / f"tray-{state}-{size}.png"
            )

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
