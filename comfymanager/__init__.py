"""comfymanager: build, run and manage isolated ComfyUI projects."""

__version__ = "0.1.0"
