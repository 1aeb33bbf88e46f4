"""Rewrite imports and dotted names from the pre-issue-12 module layout to the grouped one.

    python scripts/seam_moves.py FILE_OR_DIR...

Idempotent: run it on code written against the old paths (``comfymanager.core.runs`` ...) and
it imports the new ones (``comfymanager.core.run.runs`` ...). It handles dotted names anywhere
(imports, ``monkeypatch`` strings, ``-m`` arguments) and splits ``from comfymanager.core import
a, b`` lists whose members moved. File paths in strings (``core/supervise.py``) are not touched.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

# Old dotted module -> new dotted module (exact; longest names first when rewriting).
MOVES = {
    "comfymanager.core.importer_apply": "comfymanager.core.importer.apply",
    "comfymanager.core.importer_decision": "comfymanager.core.importer.decision",
    "comfymanager.core.importer_search": "comfymanager.core.importer.search",
    "comfymanager.core.importer_manifest": "comfymanager.core.importer.manifest",
    "comfymanager.core.importer": "comfymanager.core.importer.plan",
    "comfymanager.core.workflow.plan": "comfymanager.core.workflow.analyze",
    "comfymanager.core.runs": "comfymanager.core.run.runs",
    "comfymanager.core.runstate": "comfymanager.core.run.runstate",
    "comfymanager.core.launch": "comfymanager.core.run.launch",
    "comfymanager.core.supervise": "comfymanager.core.run.supervise",
    "comfymanager.core.ports": "comfymanager.core.run.ports",
    "comfymanager.core.monitor": "comfymanager.core.run.monitor",
    "comfymanager.core.install": "comfymanager.core.install.install",
    "comfymanager.core.envs": "comfymanager.core.install.envs",
    "comfymanager.core.sources": "comfymanager.core.install.sources",
    "comfymanager.core.git_lib": "comfymanager.core.install.git_lib",
    "comfymanager.core.packs": "comfymanager.core.install.packs",
    "comfymanager.core.hardware": "comfymanager.core.install.hardware",
    "comfymanager.core.verify_check": "comfymanager.core.verify.check",
    "comfymanager.core.verify_graph": "comfymanager.core.verify.graph",
    "comfymanager.core.verify_result": "comfymanager.core.verify.result",
    "comfymanager.core.verify_scan": "comfymanager.core.verify.scan",
    "comfymanager.core.verify": "comfymanager.core.verify.verify",
    "comfymanager.ui.panes.actions": "comfymanager.ui.actions",
}
NEW = set(MOVES.values())

# `from PACKAGE import a, b as c` where PACKAGE is a parent of moved modules.
FROM_LIST = re.compile(
    r"^(?P<indent>[ \t]*)from (?P<pkg>comfymanager\.(?:core|core\.workflow|ui\.panes)) import "
    r"(?P<names>\([^)]*\)|[^\n#]+)",
    re.M,
)
DOTTED = re.compile(
    r"(?<![\w.])("
    + "|".join(re.escape(k) for k in sorted(MOVES, key=len, reverse=True))
    + r")(?![\w])"
)

NEW_NAME = re.compile(
    "(" + "|".join(re.escape(v) for v in sorted(NEW, key=len, reverse=True)) + r")(?![\w])"
)


def _split_from(match: re.Match[str]) -> str:
    indent, pkg = match["indent"], match["pkg"]
    raw = match["names"].strip().strip("()")
    names = [n.strip() for n in raw.replace("\n", " ").split(",") if n.strip()]
    kept: list[str] = []
    lines: list[str] = []
    for item in names:
        name, _, alias = item.partition(" as ")
        name, alias = name.strip(), alias.strip()
        old = f"{pkg}.{name}"
        new = MOVES.get(old)
        if new is None or old in NEW:
            kept.append(item)
            continue
        parent, _, leaf = new.rpartition(".")
        as_part = f" as {alias}" if alias else (f" as {name}" if leaf != name else "")
        lines.append(f"{indent}from {parent} import {leaf}{as_part}")
    if not lines:
        return match.group(0)
    if kept:
        lines.insert(0, f"{indent}from {pkg} import {', '.join(kept)}")
    return "\n".join(lines)


def _imports_submodule(text: str, end: int, package: str) -> bool:
    """``from comfymanager.core.install import envs``: the new package, not the old module."""
    follow = re.match(r" import \(?\s*(\w+)", text[end : end + 80])
    return bool(follow) and f"{package}.{follow[1]}" in NEW


def rewrite(text: str) -> str:
    out: list[str] = []
    pos = 0
    for m in DOTTED.finditer(text):
        old = m.group(1)
        if NEW_NAME.match(text, m.start()) or _imports_submodule(text, m.end(), old):
            continue  # already a new name (comfymanager.core.install.envs, ...)
        new = MOVES[old]
        out.append(text[pos : m.start()])
        out.append(new)
        pos = m.end()
    out.append(text[pos:])
    return FROM_LIST.sub(_split_from, "".join(out))


def main(argv: list[str]) -> int:
    for arg in argv:
        root = Path(arg)
        files = [root] if root.is_file() else sorted(root.rglob("*.py"))
        for path in files:
            if path.resolve() == Path(__file__).resolve():
                continue
            text = path.read_text(encoding="utf-8")
            new = rewrite(text)
            if new != text:
                path.write_text(new, encoding="utf-8")
                print(f"rewrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
