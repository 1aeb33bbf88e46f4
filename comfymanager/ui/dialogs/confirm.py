"""The questions the window asks before something irreversible (delete, quit with runs).

Plain functions so tests can replace them (monkeypatch ``confirm.ask_delete``/``ask_quit``).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QCheckBox, QMessageBox, QWidget

STOP = "stop"
LEAVE = "leave"
CANCEL = "cancel"


KEEP_OUTPUTS = "keep-outputs"
DELETE_ALL = "delete-all"


def ask_delete(parent: QWidget | None, project: str, folder: str, running: bool) -> str:
    """KEEP_OUTPUTS (the default), DELETE_ALL, or "" when the user cancels.

    Kept outputs go to ``<data>/kept-outputs/``, beside ``<data>/projects/<project>``.
    """
    kept_in = str(Path(folder).parent.parent / "kept-outputs")
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle("Delete project")
    box.setText(f"Delete the project '{project}'?")
    extra = "ComfyUI is running: it will be stopped first.\n\n" if running else ""
    box.setInformativeText(
        f"{extra}This removes the folder {folder} with its ComfyUI, Python environment, "
        "custom nodes and inputs. Shared models are kept."
    )
    keep = QCheckBox(f"Keep its outputs (moved to {kept_in})", box)
    keep.setObjectName("keepOutputs")
    keep.setChecked(True)
    box.setCheckBox(keep)
    delete = box.addButton("Delete", QMessageBox.ButtonRole.DestructiveRole)
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(QMessageBox.StandardButton.Cancel)
    box.exec()
    if box.clickedButton() is not delete:
        return CANCEL_DELETE
    return KEEP_OUTPUTS if keep.isChecked() else DELETE_ALL


CANCEL_DELETE = ""


def ask_quit(parent: QWidget | None, running: list[str]) -> str:
    """STOP, LEAVE (they keep running and are found again at the next start) or CANCEL."""
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Question)
    box.setWindowTitle("Quit comfymanager")
    names = ", ".join(running)
    box.setText(
        f"ComfyUI is running for {names}."
        if len(running) == 1
        else f"ComfyUI is running for {len(running)} projects: {names}."
    )
    them = "it" if len(running) == 1 else "them"
    box.setInformativeText(
        f"Stop {them} before quitting? If you leave {them} running, comfymanager finds "
        f"{them} again the next time it starts."
    )
    stop = box.addButton("Stop and quit", QMessageBox.ButtonRole.AcceptRole)
    leave = box.addButton("Leave running and quit", QMessageBox.ButtonRole.DestructiveRole)
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(stop)
    box.exec()
    clicked = box.clickedButton()
    if clicked is stop:
        return STOP
    if clicked is leave:
        return LEAVE
    return CANCEL


def ask_missing(parent: QWidget | None, missing: list[str]) -> bool:
    """True when the user goes ahead with an import that leaves ``missing`` out."""
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Question)
    box.setWindowTitle("Import with missing parts")
    n = len(missing)
    box.setText(f"{n} part{'s' if n != 1 else ''} of the workflow will be missing:")
    shown = missing[:12]
    more = f"\n... and {n - len(shown)} more" if n > len(shown) else ""
    box.setInformativeText(
        "\n".join(f"- {line}" for line in shown)
        + more
        + "\n\nThe workflow will not run until they are added. Import anyway?"
    )
    box.setDetailedText("\n".join(missing))
    go = box.addButton("Import anyway", QMessageBox.ButtonRole.AcceptRole)
    back = box.addButton("Go back", QMessageBox.ButtonRole.RejectRole)
    box.setDefaultButton(back)
    box.exec()
    return box.clickedButton() is go
