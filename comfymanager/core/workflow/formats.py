"""Load a workflow from any file ComfyUI (or a neighbouring tool) writes.

``load_workflow(path)`` reads UI JSON, API ("prompt") JSON, our manifest, the older
ComfyUI-Launcher format, and workflows embedded in PNG, WebP, FLAC/Opus/MP3, MP4 and WebM/MKV
files. It never lets a parser exception escape: every problem becomes ``WorkflowError`` whose
message names the file, the cause and the fix.
"""

from __future__ import annotations

import functools
import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, ParamSpec, TypeVar

from comfymanager.core.errors import ComfyManagerError, InvalidInput
from comfymanager.core.text import visible
from comfymanager.core.workflow import media

log = logging.getLogger(__name__)

MAX_FILE_BYTES = 16 * 1024 * 1024
"""JSON files (and embedded JSON texts) above this size are refused before they are parsed.
The largest official template is under 1 MB. ``json.loads`` needs about 9 times the text in
memory for a real workflow and up to 26 times for the worst shape (``[{},{},...]``), so this
keeps one file under ~450 MB and ~2 s (figures: docs/RELIABILITY.md, Workflow readers).
"""

MAX_NODES = 100_000
"""Workflows with more node entries than this (root graph, subgraph definitions, group nodes
and API prompt entries together) are refused before the walk: real workflows have hundreds."""

Format = Literal["ui", "api", "launcher", "manifest"]
MANIFEST_KIND = "comfymanager.manifest"
LAUNCHER_FORMAT = "comfyui_launcher"

JSON_SUFFIXES = {".json", ".txt", ""}
FIX_EXPORT = (
    "Open it in ComfyUI and use Workflow > Export (or Export (API)), then import that .json file."
)


class WorkflowError(InvalidInput):
    """A file could not be read as a workflow; the message names the file and the cause."""


@dataclass(frozen=True)
class LoadedWorkflow:
    """What one file holds. ``ui``/``api``/``manifest`` are the raw dicts (or None)."""

    source: Path
    format: Format
    ui: dict[str, Any] | None
    api: dict[str, Any] | None
    manifest: dict[str, Any] | None
    warnings: tuple[str, ...] = ()


def _fail(path: Path, cause: str, fix: str = FIX_EXPORT) -> WorkflowError:
    return WorkflowError(f"{visible(str(path))}: {cause}.", fix)


P = ParamSpec("P")
R = TypeVar("R")


def guard_reader(func: Callable[P, R]) -> Callable[P, R]:
    """The last line of defence of a reader whose first argument is the file's path: a typed
    error about the content gets the file's name in front if it lacks it, and a stray
    exception (a shape of damaged file nobody foresaw) becomes a ``WorkflowError`` naming the
    file and the exception, with the traceback in the log, never a traceback on the screen.
    The fuzzer (scripts/fuzz_readers.py) counts these as crashes all the same (the original
    exception is the ``__cause__``)."""

    @functools.wraps(func)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except InvalidInput as exc:  # e.g. a manifest field: say which file it is in
            shown = visible(str(args[0] if args else kwargs.get("path", "")))
            if shown and shown not in exc.message:
                exc.message = f"{shown}: {exc.message}"
                exc.args = (exc.message, *exc.args[1:])
            raise
        except ComfyManagerError:
            raise
        except MemoryError:
            path = args[0] if args else kwargs.get("path", "?")
            raise WorkflowError(
                f"{path}: the workflow needs more memory than this computer has free.",
                "Check that this is really a workflow file; real workflows are far smaller.",
            ) from None
        except (Exception, RecursionError) as exc:
            path = args[0] if args else kwargs.get("path", "?")
            log.warning("reading %s failed unexpectedly", path, exc_info=True)
            raise WorkflowError(
                f"{path}: this file has a shape comfymanager cannot read "
                f"({type(exc).__name__}: {visible(str(exc)[:200])}).",
                FIX_EXPORT + " If ComfyUI itself opens this file, please report it as a bug "
                "(the log has the details).",
            ) from exc

    return guarded


def parse_json_text(text: str | bytes, path: Path, what: str = "JSON") -> Any:
    """``json.loads`` with the size cap, NaN accepted, and every failure as WorkflowError."""
    if len(text) > MAX_FILE_BYTES:
        raise _fail(
            path,
            f"the {what} is {len(text) / 1e6:.0f} MB, above the "
            f"{MAX_FILE_BYTES // (1024 * 1024)} MiB limit for workflows",
            "Check that this is really a workflow file; real workflows are far smaller.",
        )
    if isinstance(text, bytes):
        if text.startswith(b"\xef\xbb\xbf"):
            text = text[3:]
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _fail(path, f"the {what} is not UTF-8 text ({exc.reason})") from None
    try:
        return json.loads(text)
    except RecursionError:
        raise _fail(path, f"the {what} is nested too deeply to be a workflow") from None
    except json.JSONDecodeError as exc:
        cause = f"the {what} is not valid JSON ({exc.msg} at line {exc.lineno}"
        cause += f" column {exc.colno})"
        if exc.pos >= len(text.rstrip()) - 1:
            cause += "; the file looks truncated"
        raise _fail(path, cause) from None
    except ValueError as exc:  # e.g. int conversion limits
        raise _fail(path, f"the {what} could not be parsed ({exc})") from None


def _is_api_graph(data: dict[str, Any]) -> bool:
    if not data:
        return False
    hits = sum(1 for v in data.values() if isinstance(v, dict) and "class_type" in v)
    return hits > 0 and hits >= len(data) * 0.5


def _is_ui_graph(data: Any) -> bool:
    return isinstance(data, dict) and isinstance(data.get("nodes"), list)


def _classify(
    data: Any, path: Path, warnings: list[str]
) -> tuple[Format, dict[str, Any] | None, dict[str, Any] | None, dict[str, Any] | None]:
    if not isinstance(data, dict):
        raise _fail(
            path,
            f"it holds a JSON {type(data).__name__}, not a ComfyUI workflow (an object with "
            '"nodes", or an API prompt)',
        )
    if data.get("kind") == MANIFEST_KIND:
        return "manifest", None, None, data
    if data.get("format") == LAUNCHER_FORMAT:
        ui = data.get("workflow_json")
        if ui is not None and not _is_ui_graph(ui):
            warnings.append("the launcher file's workflow_json is not a UI workflow; ignored")
            ui = None
        return "launcher", ui, None, data
    if "nodes" in data:
        if not isinstance(data["nodes"], list):
            raise _fail(path, f'"nodes" is a {type(data["nodes"]).__name__}, not a list')
        return "ui", data, None, None
    # wrappers seen in the wild: {"workflow": {...}, "prompt": {...}} (history exports)
    wrapped_ui = data.get("workflow")
    if _is_ui_graph(wrapped_ui):
        return "ui", wrapped_ui, None, None
    wrapped_api = data.get("prompt")
    if isinstance(wrapped_api, dict) and _is_api_graph(wrapped_api):
        return "api", None, wrapped_api, None
    if _is_api_graph(data):
        bad = [k for k, v in data.items() if not (isinstance(v, dict) and "class_type" in v)]
        if bad:
            warnings.append(f"ignored {len(bad)} entries that are not nodes: {', '.join(bad[:5])}")
        return "api", None, data, None
    keys = ", ".join(visible(k[:40]) for k in list(data)[:6]) or "none"
    raise _fail(
        path,
        f'it is JSON but not a ComfyUI workflow (no "nodes" list and no node with '
        f'"class_type"; top-level keys: {keys})',
    )


def _from_embedded(path: Path, texts: dict[str, str], container: str) -> LoadedWorkflow:
    warnings: list[str] = []
    wf_text = texts.get("workflow")
    pr_text = texts.get("prompt")
    if wf_text is None and pr_text is None:
        raise _fail(
            path,
            f"this {container} file has no embedded workflow (no 'workflow' or 'prompt' "
            "metadata; it may have been re-saved by another program, which strips it)",
            "Use the original file saved by ComfyUI, or the workflow's .json export.",
        )
    if wf_text is not None:
        try:
            data = parse_json_text(wf_text, path, f"embedded {container} workflow")
            if _is_ui_graph(data):
                return LoadedWorkflow(path, "ui", data, None, None, tuple(warnings))
            warnings.append("the embedded 'workflow' is not a UI workflow; using 'prompt'")
        except WorkflowError as exc:
            if pr_text is None:
                raise
            warnings.append(f"the embedded 'workflow' could not be read ({exc.message})")
    if pr_text is None:
        raise _fail(path, f"the embedded {container} workflow is not a ComfyUI workflow")
    data = parse_json_text(pr_text, path, f"embedded {container} prompt")
    if not (isinstance(data, dict) and _is_api_graph(data)):
        raise _fail(path, f"the embedded {container} prompt is not a ComfyUI API workflow")
    return LoadedWorkflow(path, "api", None, data, None, tuple(warnings))


def _node_count(graph: Any, depth: int = 0) -> int:
    """Node entries of a UI graph, its subgraph definitions and group nodes (capped depth)."""
    if not isinstance(graph, dict) or depth > 32:
        return 0
    nodes = graph.get("nodes")
    count = len(nodes) if isinstance(nodes, list) else 0
    defs = graph.get("definitions")
    subs = defs.get("subgraphs") if isinstance(defs, dict) else None
    if isinstance(subs, list):
        count += sum(_node_count(sub, depth + 1) for sub in subs)
    extra = graph.get("extra")
    groups = extra.get("groupNodes") if isinstance(extra, dict) else None
    if isinstance(groups, dict):
        count += sum(_node_count(g, depth + 1) for g in groups.values())
    return count


def check_size(loaded: LoadedWorkflow) -> LoadedWorkflow:
    """``loaded`` unchanged, or ``WorkflowError`` when it holds more than ``MAX_NODES`` nodes."""
    count = _node_count(loaded.ui) + (len(loaded.api) if loaded.api else 0)
    manifest = loaded.manifest if loaded.format == "manifest" else None
    workflows = manifest.get("workflows") if manifest else None
    if isinstance(workflows, list):
        count += sum(_node_count(w.get("content")) for w in workflows if isinstance(w, dict))
    if count > MAX_NODES:
        raise _fail(
            loaded.source,
            f"the workflow has {count:,} nodes, above the {MAX_NODES:,}-node limit",
            "Check that this is really a workflow file; real workflows have hundreds of nodes. "
            "Split it into smaller workflows.",
        )
    return loaded


@guard_reader
def load_workflow(path: Path) -> LoadedWorkflow:
    """Read ``path`` and say what it holds. Raises ``WorkflowError`` for anything unusable."""
    return check_size(_load(path))


def _load(path: Path) -> LoadedWorkflow:
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(64)
    except FileNotFoundError:
        raise _fail(path, "the file does not exist", "Check the path and try again.") from None
    except IsADirectoryError:
        raise _fail(path, "this is a folder, not a file", "Give a workflow file.") from None
    except OSError as exc:
        raise _fail(
            path, f"the file could not be read ({exc.strerror or exc})", "Check permissions."
        ) from None
    if size == 0:
        raise _fail(path, "the file is empty")
    kind = media.sniff(head, path.suffix.lower())
    if kind == "json":
        if size > MAX_FILE_BYTES:
            raise _fail(
                path,
                f"the file is {size / 1e6:.0f} MB, above the "
                f"{MAX_FILE_BYTES // (1024 * 1024)} MiB limit for workflow JSON",
                "Check that this is really a workflow file; real workflows are far smaller.",
            )
        data = parse_json_text(path.read_bytes(), path)
        warnings: list[str] = []
        fmt, ui, api, manifest = _classify(data, path, warnings)
        return LoadedWorkflow(path, fmt, ui, api, manifest, tuple(warnings))
    if kind == "unknown":
        raise _fail(
            path,
            "the file type is not recognised (expected .json, .png, .webp, .flac, .opus, .mp3, "
            ".mp4, .webm)",
        )
    try:
        texts = media.read_embedded(path, kind, MAX_FILE_BYTES)
    except media.MediaError as exc:
        raise _fail(path, str(exc), exc.fix or FIX_EXPORT) from None
    return _from_embedded(path, texts, media.LABELS.get(kind, kind))


def finite_number(value: Any) -> float | None:
    """A JSON number that is finite (NaN and infinities, kept by the parser, become None)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None
