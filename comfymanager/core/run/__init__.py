"""The run cluster: start, watch and stop ComfyUI.

``runs`` (start/wait/stop/status), ``runstate`` (records and ownership), ``launch`` (the command
line), ``supervise`` (stdlib-only supervisor script run by the project's Python), ``ports``,
``monitor`` (the background watcher).
"""
