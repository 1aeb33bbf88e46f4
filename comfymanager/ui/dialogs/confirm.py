"""The questions the window asks before something irreversible (delete, quit with runs).

Plain functions so tests can replace them (monkeypatch ``confirm.ask_delete``/``ask_quit``).
"""

from __future__ import annotations

from PySide6.QtWidgets import QMessageBox, QWidget

STOP = "stop"
LEAVE = "leave"
CANCEL = "cancel"


def ask_delete(parent: QWidget | None, project: str, folder: str, running: bool) -> bool:
    """True when the user confirms deleting the project folder."""
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle("Delete project")
    box.setText(f"Delete the project '{project}'?")
    extra = "ComfyUI is running: it will be stopped first.\n\n" if running else ""
    box.setInformativeText(
        f"{extra}This removes the folder {folder} with its ComfyUI, Python environment, "
        "custom nodes, inputs and outputs. Shared models are kept."
    )
    delete = box.addButton("Delete", QMessageBox.ButtonRole.DestructiveRole)
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(QMessageBox.StandardButton.Cancel)
    box.exec()
    return box.clickedButton() is delete


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
    box.setInformativeText(
        "Stop them before quitting? If you leave them running, comfymanager finds them again "
        "the next time it starts."
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
