"""``visible``: every character that could steer a terminal or hide text is made visible, and
ordinary text of any script is left alone."""

from __future__ import annotations

import pytest

from comfymanager.core.text import visible

HIDDEN = {
    "\0": ("\\x00", "<U+0000>"),
    "\n": ("\\n", "<U+000A>"),
    "\r": ("\\r", "<U+000D>"),
    "\t": ("\\t", "<U+0009>"),
    "\x1b": ("\\x1b", "<U+001B>"),
    "\x7f": ("\\x7f", "<U+007F>"),
    "\x85": ("\\x85", "<U+0085>"),  # C1 next line
    "\u00a0": ("\\xa0", "<U+00A0>"),  # no-break space: looks like a space, is not one
    "\u200b": ("\\u200b", "<U+200B>"),  # zero-width space
    "\u2028": ("\\u2028", "<U+2028>"),  # line separator
    "\ufeff": ("\\ufeff", "<U+FEFF>"),  # BOM
    "\ue000": ("\\ue000", "<U+E000>"),  # private use
    "\U000e0001": ("\\U000e0001", "<U+E0001>"),  # language tag
    "\ud800": ("\\ud800", "<U+D800>"),  # lone surrogate (from surrogateescape file names)
}
HIDDEN.update({chr(c): (f"\\u{c:04x}", f"<U+{c:04X}>") for c in range(0x202A, 0x202F)})
HIDDEN.update({chr(c): (f"\\u{c:04x}", f"<U+{c:04X}>") for c in range(0x2066, 0x206A)})


@pytest.mark.parametrize("ch", sorted(HIDDEN))
def test_hidden_characters_are_shown(ch: str) -> None:
    terminal, window = HIDDEN[ch]
    assert visible(f"a{ch}b") == f"a{terminal}b"
    assert visible(f"a{ch}b", "window") == f"a{window}b"


@pytest.mark.parametrize(
    "text",
    ["model.safetensors", "sub dir/é ü ß.ckpt", "模型.safetensors", "😀 🎨", "Ωμέγα", "a\\b"],
)
def test_ordinary_text_is_unchanged(text: str) -> None:
    assert visible(text) == text
    assert visible(text, "window") == text
