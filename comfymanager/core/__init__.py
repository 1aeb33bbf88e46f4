"""The Qt-widget-free core: plain typed functions, dataclasses and typed errors.

Only ``PySide6.QtCore`` may be imported here (see ``workers.py``); nothing from QtWidgets,
QtGui or ``comfymanager.ui``. ``tests/unit/test_layers.py`` enforces it.
"""
