"""PyInstaller entry script: the frozen program starts here and runs the normal ``main``."""

from __future__ import annotations

import multiprocessing
import sys

from comfymanager.__main__ import main

if __name__ == "__main__":
    multiprocessing.freeze_support()  # harmless unless a library spawns helper processes
    sys.exit(main())
