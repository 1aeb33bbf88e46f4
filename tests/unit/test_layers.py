"""The core is Qt-widget-free: no module under comfymanager/core imports QtWidgets, QtGui or ui."""

from __future__ import annotations

import ast
from pathlib import Path

import comfymanager.core

FORBIDDEN = ("PySide6.QtWidgets", "PySide6.QtGui", "comfymanager.ui")


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
            names += [f"{node.module}.{a.name}" for a in node.names]
    return names


def test_core_imports_no_widgets_or_ui() -> None:
    core = Path(comfymanager.core.__file__).parent
    offenders = {
        str(p.relative_to(core)): bad
        for p in core.rglob("*.py")
        if (bad := [n for n in _imports(p) if n.startswith(FORBIDDEN)])
    }
    assert offenders == {}


def test_layer_check_catches_a_widget_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from PySide6.QtWidgets import QLabel\n")
    assert any(n.startswith(FORBIDDEN) for n in _imports(bad))


def test_cli_start_does_not_import_heavy_stacks() -> None:
    """``comfymanager --version``/``--help``/``list`` must start fast: the download, Hugging Face
    and import stacks are imported by the handlers that use them, not by the parser."""
    import subprocess
    import sys

    code = (
        "import sys, comfymanager.cli as c; c.build_parser(); "
        "print(','.join(m for m in ('requests', 'huggingface_hub', 'PySide6.QtWidgets', "
        "'comfymanager.core.importer.plan') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
