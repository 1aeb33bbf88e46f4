"""Outside text (names from a workflow, a file, a server) shown without letting it steer the
terminal or hide part of itself: one function, ``visible``, for the CLI and the window.

Imports nothing heavy: the CLI's common module uses it for every line.
"""

from __future__ import annotations

from typing import Literal


def _hidden(ch: str) -> bool:
    """Characters that move the cursor, change direction, or show nothing: every C0/C1
    control (NUL, newline, ESC...), format characters (bidi overrides U+202A-202E and isolates
    U+2066-2069, zero-width spaces, the BOM), line/paragraph separators, surrogates, unassigned
    and private-use code points."""
    return not ch.isprintable() and ch != " "


def visible(text: str, style: Literal["terminal", "window"] = "terminal") -> str:
    """``text`` with every hidden character made visible: ``\\n``, ``\\x1b``, ``\\u202e`` in
    the terminal (Python's escapes), ``<U+202E>`` in the window. Printable text is unchanged."""
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if not _hidden(ch):
            out.append(ch)
        elif style == "window":
            out.append(f"<U+{ord(ch):04X}>")
        elif ch in "\n\r\t":
            out.append({"\n": "\\n", "\r": "\\r", "\t": "\\t"}[ch])
        elif ord(ch) < 0x100:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return "".join(out)


def counted(n: int, noun: str, plural: str = "") -> str:
    """``1 pack``, ``2 packs`` (``plural`` for irregular nouns: ``counted(2, "is", "are")``)."""
    return f"{n} {noun if n == 1 else (plural or noun + 's')}"
