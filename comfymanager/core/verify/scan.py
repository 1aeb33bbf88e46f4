"""Dump the node definitions of a ComfyUI install, run INSIDE the project's own Python.

Standard library only (it runs in the project's environment, where comfymanager is not
installed) and never imported by comfymanager: ``verify.py`` runs it as a script, with the
project's ComfyUI folder as the working directory::

    <venv python> scan.py --out FILE [--cpu]

It loads ComfyUI's nodes and the installed packs without starting the server
(``comfy.options.enable_args_parsing()``, ``nodes.init_extra_nodes(init_custom_nodes=True)``,
awaited when it is a coroutine; older signatures tolerated), with
``folder_paths.get_filename_list`` replaced by a function that returns marker names naming the
folder it was asked for. Each class's ``INPUT_TYPES()`` is then searched for those markers: an
input listing the markers of folder F reads its files from F.

A pack that fails to import is recorded with its error: ComfyUI logs "Cannot import <path> module
for custom nodes: <error>" (caught by a logging handler, with the exception's type), and a pack
that raises past ComfyUI's own handler (``sys.exit``) is caught by a wrapper round the loader.
A class whose ``INPUT_TYPES()`` raises is kept with ``input_error``. Packs may print what they
like: the result goes to ``--out``, never stdout. Exit code 0 when the file was written.
"""

from __future__ import annotations

import os
import sys

# Run as a script, this file's own folder comes first on sys.path, and it holds comfymanager's
# core modules, some named like the standard library's (secrets): take it out before anything
# else is imported, so ComfyUI and the packs get what they ask for.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

import argparse  # noqa: E402
import asyncio  # noqa: E402
import inspect  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import re  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from typing import Any  # noqa: E402

MARK = "__comfymanager_folder__"
MARK_EXTS = (".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".gguf", ".onnx", ".sft", ".pkl")
_MARK_RE = re.compile(re.escape(MARK) + r"(.+?)" + re.escape(MARK))
_FAILED_RE = re.compile(r"Cannot import (.+?) module for custom nodes:\s*(.*)", re.DOTALL)
MAX_DEPTH = 6
LOADING = "verify-scan: loading pack "


def markers(folder: str) -> list[str]:
    """What the patched ``get_filename_list(folder)`` answers: one name per model extension
    (loaders that filter by extension keep at least one)."""
    return [f"{MARK}{folder}{MARK}{ext}" for ext in MARK_EXTS]


def is_builtin(path: object) -> bool:
    """comfy_extras / comfy_api_nodes go through the same loader but are not packs."""
    parent = os.path.basename(os.path.dirname(os.path.normpath(str(path))))
    return parent in ("comfy_extras", "comfy_api_nodes", "comfy_api")


def pack_of(path: object) -> str:
    name = os.path.basename(os.path.normpath(str(path)))
    return name[:-3] if name.endswith(".py") else name


class FailureLog(logging.Handler):
    """Collects ComfyUI's "Cannot import ... module for custom nodes" records."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.failed: dict[str, str] = {}

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # a pack's odd log record must not stop the scan
            return
        m = _FAILED_RE.search(text)
        if not m:
            return
        exc = sys.exc_info()[1]  # ComfyUI logs this inside its except block
        detail = f"{type(exc).__name__}: {exc}" if exc is not None else m.group(2).strip()
        path = m.group(1).strip()
        if not is_builtin(path):
            self.failed[pack_of(path)] = detail.strip()


def find_folders(spec: Any, depth: int = 0) -> list[str]:
    """Folder names whose markers appear anywhere in one input's spec."""
    found: list[str] = []
    if depth > MAX_DEPTH:
        return found
    if isinstance(spec, str):
        m = _MARK_RE.search(spec)
        if m and m.group(1) not in found:
            found.append(m.group(1))
    elif isinstance(spec, (list, tuple)):
        for item in spec:
            for f in find_folders(item, depth + 1):
                if f not in found:
                    found.append(f)
    elif isinstance(spec, dict):
        for item in spec.values():
            for f in find_folders(item, depth + 1):
                if f not in found:
                    found.append(f)
    return found


def describe(name: str, cls: Any, pack_by_class: dict[str, str]) -> dict[str, Any]:
    """One class in the shared node-definitions shape."""
    module = getattr(cls, "RELATIVE_PYTHON_MODULE", None) or getattr(cls, "__module__", "nodes")
    module = str(module)
    pack = pack_by_class.get(name)
    if pack is None and module.startswith("custom_nodes."):
        pack = module.split(".", 2)[1]
    if pack is not None and not module.startswith("custom_nodes."):
        module = f"custom_nodes.{pack}"
    entry: dict[str, Any] = {"module": module, "pack": pack, "widgets": [], "model_inputs": {}}
    try:
        inputs = cls.INPUT_TYPES()
        if not isinstance(inputs, dict):
            raise TypeError(f"INPUT_TYPES() returned {type(inputs).__name__}, not a dict")
        for section in ("required", "optional"):
            group = inputs.get(section) or {}
            if not isinstance(group, dict):
                continue
            for key, spec in group.items():
                entry["widgets"].append(str(key))
                folders = find_folders(spec)
                if folders:
                    entry["model_inputs"][str(key)] = folders
    except BaseException as exc:  # one pack's bug must not stop the scan
        if isinstance(exc, KeyboardInterrupt):
            raise
        entry["input_error"] = f"{type(exc).__name__}: {exc}"
    return entry


def patch_filename_list() -> None:
    import folder_paths

    def get_filename_list(folder_name: str, *args: Any, **kwargs: Any) -> list[str]:
        return list(markers(folder_name))

    folder_paths.get_filename_list = get_filename_list
    # some packs cache the list per folder; empty caches keep the marker answer
    if hasattr(folder_paths, "filename_list_cache") and isinstance(
        folder_paths.filename_list_cache, dict
    ):
        folder_paths.filename_list_cache.clear()


def listen(handler: logging.Handler) -> None:
    """Keep the failure handler on the root logger at WARNING or lower: a pack that resets
    logging while importing must not hide the next pack's import error."""
    root = logging.getLogger()
    if handler not in root.handlers:
        root.addHandler(handler)
    if root.level > logging.WARNING:
        root.setLevel(logging.WARNING)


def wrap_loader(
    nodes: Any,
    failures: dict[str, str],
    pack_by_class: dict[str, str],
    handler: logging.Handler,
) -> None:
    """Wrap ``nodes.load_custom_node``: record which classes each pack adds and catch what
    ComfyUI's own handler lets through (``SystemExit`` from a pack)."""
    original = getattr(nodes, "load_custom_node", None)
    if original is None:
        return

    def record(path: object, before: set[str]) -> None:
        for key in list(getattr(nodes, "NODE_CLASS_MAPPINGS", {})):
            if key not in before:
                pack_by_class.setdefault(key, pack_of(path))

    def fail(path: object, exc: BaseException) -> None:
        failures.setdefault(pack_of(path), f"{type(exc).__name__}: {exc}")

    def load_custom_node(module_path: str, *args: Any, **kwargs: Any) -> Any:
        parent = kwargs.get("module_parent", args[1] if len(args) > 1 else "custom_nodes")
        if parent != "custom_nodes" or is_builtin(module_path):
            return original(module_path, *args, **kwargs)
        listen(handler)
        # names the culprit if this pack ends or hangs the process (the parent reads the tail)
        print(f"{LOADING}{pack_of(module_path)}", file=sys.__stderr__, flush=True)
        before = set(getattr(nodes, "NODE_CLASS_MAPPINGS", {}))
        try:
            result = original(module_path, *args, **kwargs)
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt):
                raise
            fail(module_path, exc)
            return False
        if inspect.isawaitable(result):

            async def finish() -> Any:
                try:
                    value = await result
                except BaseException as exc:
                    if isinstance(exc, (KeyboardInterrupt, asyncio.CancelledError)):
                        raise
                    fail(module_path, exc)
                    return False
                record(module_path, before)
                return value

            return finish()
        record(module_path, before)
        return result

    nodes.load_custom_node = load_custom_node


class Permissive:
    """Stands in for ``PromptServer.instance`` when the real one cannot be built: packs that
    register routes or handlers while importing get a no-op (a decorator returns the function)."""

    def __getattr__(self, name: str) -> Permissive:
        return Permissive()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if len(args) == 1 and callable(args[0]) and not kwargs:
            return args[0]
        return Permissive()

    def __iter__(self) -> Any:
        return iter(())

    def __bool__(self) -> bool:
        return False


def make_server(loop: asyncio.AbstractEventLoop) -> None:
    """What main.py does before loading the packs: build (not start) the PromptServer, since
    many packs add routes through ``PromptServer.instance`` while importing."""
    try:
        import server
    except Exception as exc:
        print(f"verify-scan: no server module ({type(exc).__name__}: {exc})", file=sys.stderr)
        return
    cls = getattr(server, "PromptServer", None)
    if cls is None or getattr(cls, "instance", None) is not None:
        return
    try:
        cls(loop)
    except Exception as exc:
        print(f"verify-scan: PromptServer stand-in ({type(exc).__name__}: {exc})", file=sys.stderr)
    if getattr(cls, "instance", None) is None:
        cls.instance = Permissive()


def init_nodes(nodes: Any, loop: asyncio.AbstractEventLoop) -> None:
    init = getattr(nodes, "init_extra_nodes", None)
    if init is None:  # very old ComfyUI
        init = getattr(nodes, "init_custom_nodes", None)
        if init is None:
            return
        result = init()
    else:
        wanted = {"init_custom_nodes": True, "init_api_nodes": False}
        try:
            params = inspect.signature(init).parameters
            accepts_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
            kwargs = {k: v for k, v in wanted.items() if accepts_any or k in params}
        except (TypeError, ValueError):
            kwargs = {"init_custom_nodes": True}
        result = init(**kwargs)
    if inspect.isawaitable(result):

        async def run() -> Any:
            return await result

        loop.run_until_complete(run())


def version_of(root: str) -> str:
    try:
        sys.path.insert(0, root)
        import comfyui_version

        return str(comfyui_version.__version__)
    except Exception:  # older checkouts have no version file
        return ""


def scan(out_path: str, cpu: bool, comfy_args: list[str]) -> None:
    root = os.getcwd()
    if root not in sys.path:
        sys.path.insert(0, root)
    sys.argv = [os.path.join(root, "main.py"), *comfy_args] + (["--cpu"] if cpu else [])
    failures_log = FailureLog()
    listen(failures_log)
    started = time.monotonic()
    try:
        import comfy.options

        comfy.options.enable_args_parsing()
    except ImportError:
        pass  # older ComfyUI parses its arguments on import anyway
    patch_filename_list()
    import nodes

    failures: dict[str, str] = {}
    pack_by_class: dict[str, str] = {}
    core_classes = set(getattr(nodes, "NODE_CLASS_MAPPINGS", {}))
    wrap_loader(nodes, failures, pack_by_class, failures_log)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    make_server(loop)
    init_nodes(nodes, loop)
    for key, value in failures_log.failed.items():
        failures.setdefault(key, value)
    mappings = dict(getattr(nodes, "NODE_CLASS_MAPPINGS", {}))
    classes: dict[str, Any] = {}
    for name, cls in mappings.items():
        if name in core_classes:
            pack_by_class.pop(name, None)
        classes[str(name)] = describe(name, cls, pack_by_class)
    data = {
        "version": 1,
        "comfyui": version_of(root),
        "made_by": "project-scan",
        "classes": classes,
        "failed_packs": failures,
        "seconds": round(time.monotonic() - started, 3),
    }
    tmp = out_path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1, sort_keys=True, default=str)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, out_path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="dump ComfyUI node definitions")
    parser.add_argument("--out", required=True)
    parser.add_argument("--cpu", action="store_true")
    parser.add_argument(
        "comfy_args", nargs=argparse.REMAINDER, help="after --: ComfyUI's own flags"
    )
    args = parser.parse_args(argv)
    comfy_args = [a for a in args.comfy_args if a != "--"]
    out = os.path.abspath(args.out)
    try:
        scan(out, args.cpu, comfy_args)
    except SystemExit as exc:
        print(f"verify-scan: ComfyUI exited while loading its nodes ({exc.code})", file=sys.stderr)
        return 3
    except BaseException:  # report, then a clear exit code
        traceback.print_exc()
        print("verify-scan: loading ComfyUI's nodes failed", file=sys.stderr)
        return 2
    print("verify-scan: done", file=sys.stderr)
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # threads a pack started must not keep the process alive
