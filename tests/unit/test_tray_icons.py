"""The tray icons as macOS template images (issue 15): macOS draws only their alpha (mask), so
the idle, busy and running icons must differ by shape, not only by colour."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image, ImageChops

TRAY = Path(__file__).resolve().parents[2] / "resources" / "icons" / "tray"
STATES = ("idle", "busy", "running", "attention")


def _mask(state: str, size: int) -> Image.Image:
    """What a template image keeps: the alpha, as on or off."""
    alpha = Image.open(TRAY / f"tray-{state}-{size}.png").getchannel("A")
    return alpha.point(lambda a: 255 if a >= 128 else 0)


@pytest.mark.parametrize("size", [16, 22, 32, 64])
def test_the_three_state_masks_differ_by_shape(size: int) -> None:
    masks = {state: _mask(state, size) for state in STATES}
    for i, a in enumerate(STATES):
        for b in STATES[i + 1 :]:
            diff = ImageChops.difference(masks[a], masks[b])
            changed = diff.histogram()[255]  # pixels on in one mask and off in the other
            # a clearly visible share of the icon, even at 16 px (at least 4 pixels there)
            assert changed >= max(4, size * size // 40), (a, b, size, changed)
