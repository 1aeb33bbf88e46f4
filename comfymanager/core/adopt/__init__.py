"""Adopt an existing ComfyUI install: a read-only scan (``scan``) shown as a plan, then
``adopt`` builds a new project from it (rebuild) or registers the folder as it is (in place)."""
