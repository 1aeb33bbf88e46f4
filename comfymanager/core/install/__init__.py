"""The install cluster: build a project's ComfyUI and environment.

``install`` (create/install/repair/delete stages), ``envs`` (uv environments), ``sources``
(ComfyUI sources and caches), ``git_lib``, ``packs`` (custom node packs), ``hardware`` (GPU and
torch choice).
"""
