"""A read-only scan of an existing ComfyUI install: what it is, and what adopting it would take.

Never writes a byte into the scanned folder and never runs its Python: the ComfyUI commit comes
from ``.git`` files (HEAD, refs, packed-refs) or ``comfyui_version.py``; Python and torch from
``pyvenv.cfg``, ``python3*._pth`` and ``site-packages/*.dist-info`` names. Links inside the tree
are reported, never followed; walks are bounded (``MAX_ENTRIES``) and say when they stopped.

Three shapes are known (see COMFYUI.md section 8): a git clone (``main.py`` with a venv inside or
beside it, or none), a Windows portable build (``python_embeded/`` + ``ComfyUI/``) and the
official desktop app's base folder (``.venv``, ``custom_nodes``, ``models``, ``user``; the app's
config folder holds ``extra_models_config.yaml``).
"""

from __future__ import annotations

import configparser
import os
import re
import shlex
import stat
from dataclasses import dataclass, field
from pathlib import Path

from comfymanager.core.errors import InvalidInput, NotFound

MAX_ENTRIES = 200_000  # files looked at per walk (models, user): a huge tree is bounded
MAX_PACKS = 1000  # entries of custom_nodes looked at
MAX_READ = 1_000_000  # bytes read from any one small file (configs, refs, scripts)
GIT = "git"
PORTABLE = "portable"
DESKTOP = "desktop"
# launch flags comfymanager sets itself: the run scripts' values are dropped
_OWN_FLAGS = {
    "--port": True,
    "--listen": None,  # takes an optional value
    "--user-directory": True,
    "--input-directory": True,
    "--output-directory": True,
    "--temp-directory": True,
    "--database-url": True,
    "--extra-model-paths-config": True,
}
_HEX40 = re.compile(r"^[0-9a-f]{40}$")
_TORCH = re.compile(r"^torch-([0-9][^-]*?)\.dist-info$", re.IGNORECASE)


@dataclass(frozen=True)
class ScannedPack:
    """One entry of ``custom_nodes``: how it could be reproduced."""

    folder: str
    kind: str  # git | registry | local | file | link
    enabled: bool = True
    origin: str = ""
    commit: str = ""
    registry_id: str = ""
    version: str = ""
    note: str = ""

    @property
    def reproducible(self) -> bool:
        return (self.kind == "git" and bool(self.origin and self.commit)) or (
            self.kind == "registry" and bool(self.registry_id and self.version)
        )


@dataclass(frozen=True)
class ScanResult:
    """What was found at ``path``; ``warnings`` are things the plan must show."""

    path: str
    kind: str  # git | portable | desktop
    comfyui_dir: str = ""  # "" for the desktop app (its ComfyUI ships inside the app)
    comfyui_commit: str = ""
    comfyui_branch: str = ""
    comfyui_origin: str = ""
    comfyui_version: str = ""
    python_exe: str = ""  # the install's own interpreter ("" = none found)
    venv: str = ""
    python_version: str = ""
    torch_version: str = ""  # e.g. 2.7.1+cu128
    torch_variant: str = ""  # cu128 | cpu | rocm6.3 | "" (plain PyPI build) | none
    packs: tuple[ScannedPack, ...] = ()
    models_dirs: tuple[str, ...] = ()
    model_files: int = 0
    model_bytes: int = 0
    extra_model_paths: tuple[str, ...] = ()  # yaml files found (the install's or the app's)
    user_dir: str = ""
    workflows: tuple[str, ...] = ()  # relative to user/default/workflows
    has_settings: bool = False
    has_database: bool = False
    launch_script: str = ""
    launch_args: tuple[str, ...] = ()
    truncated: bool = False
    warnings: tuple[str, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, object]:
        from dataclasses import asdict

        data = asdict(self)
        data["packs"] = [{**asdict(p), "reproducible": p.reproducible} for p in self.packs]
        return data


def _read_text(path: Path, limit: int = MAX_READ) -> str:
    """A small file's text, opened read-only; "" when missing, a link or unreadable."""
    try:
        if path.is_symlink() or not path.is_file():
            return ""
        with open(path, "rb") as fh:
            return fh.read(limit).decode("utf-8", errors="replace")
    except OSError:
        return ""


def _is_dir(path: Path) -> bool:
    """A real folder (a link to one does not count: links are never followed)."""
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def _inside(root: Path, path: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except (OSError, ValueError):
        return False


# ---------------------------------------------------------------------------- git, read as files
def git_dir(repo: Path) -> Path | None:
    """The repository's git folder (``.git`` or what a ``gitdir:`` file names), or None."""
    dot = repo / ".git"
    if _is_dir(dot):
        return dot
    text = _read_text(dot, 4096).strip()
    if text.startswith("gitdir:"):
        target = Path(text[len("gitdir:") :].strip())
        target = target if target.is_absolute() else repo / target
        return target if _is_dir(target) else None
    return None


def _packed_ref(gdir: Path, ref: str) -> str:
    """One ref's commit from ``packed-refs``, read line by line (it can be large)."""
    path = gdir / "packed-refs"
    if path.is_symlink() or not path.is_file():
        return ""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                parts = line.strip().split(" ", 1)
                if len(parts) == 2 and parts[1].strip() == ref and _HEX40.match(parts[0]):
                    return parts[0]
    except OSError:
        return ""
    return ""


def _common_dir(gdir: Path) -> Path:
    text = _read_text(gdir / "commondir", 4096).strip()
    if not text:
        return gdir
    common = Path(text)
    return common if common.is_absolute() else (gdir / common)


def read_head(repo: Path) -> tuple[str, str]:
    """(commit, branch) of a checkout, read from its files; ("", "") when not a git checkout."""
    gdir = git_dir(repo)
    if gdir is None:
        return "", ""
    head = _read_text(gdir / "HEAD", 4096).strip()
    if _HEX40.match(head):
        return head, ""
    if not head.startswith("ref:"):
        return "", ""
    ref = head[4:].strip()
    branch = ref.removeprefix("refs/heads/")
    if ".." in ref.split("/"):
        return "", branch
    common = _common_dir(gdir)
    for base in (gdir, common):
        value = _read_text(base / ref, 4096).strip()
        if _HEX40.match(value):
            return value, branch
    return _packed_ref(common, ref), branch


def read_origin(repo: Path) -> str:
    """The ``origin`` remote's URL from the git config file ("" = none: a local-only repo)."""
    gdir = git_dir(repo)
    if gdir is None:
        return ""
    parser = configparser.RawConfigParser(strict=False)
    try:
        parser.read_string(_read_text(_common_dir(gdir) / "config"))
    except configparser.Error:
        return ""
    section = 'remote "origin"'
    if parser.has_section(section) and parser.has_option(section, "url"):
        return parser.get(section, "url").strip()
    return ""


MAX_INDEX_ENTRIES = 20_000  # files of one checkout compared with the git index


def worktree_changed(repo: Path) -> bool | None:
    """True when a tracked file differs from the git index (size or mtime, as git's own first
    check), False when none does, None when it cannot be told cheaply (index v4, too big...).
    Untracked files are not looked at."""
    import struct

    gdir = git_dir(repo)
    if gdir is None:
        return None
    try:
        with open(gdir / "index", "rb") as fh:
            data = fh.read(64 * 1024 * 1024)
    except OSError:
        return None
    if len(data) < 12 or data[:4] != b"DIRC":
        return None
    version, count = struct.unpack(">II", data[4:12])
    if version not in (2, 3) or count > MAX_INDEX_ENTRIES:
        return None
    pos = 12
    for _ in range(count):
        if pos + 62 > len(data):
            return None
        fields = struct.unpack(">10I", data[pos : pos + 40])
        mtime_s, mode, size = fields[2], fields[6], fields[9]
        flags = struct.unpack(">H", data[pos + 60 : pos + 62])[0]
        head = 62 + (2 if version == 3 and flags & 0x4000 else 0)
        end = data.find(b"\0", pos + head)
        if end < 0:
            return None
        rel = data[pos + head : end].decode("utf-8", errors="replace")
        pos += (end - pos + 8) & ~7
        if mode >> 12 in (0o16, 0o12):  # a submodule or a link: not compared
            continue
        if ".." in rel.split("/"):
            return None
        try:
            st = os.lstat(repo / rel)
        except OSError:
            return True  # a tracked file is gone
        if (st.st_size & 0xFFFFFFFF) != size or int(st.st_mtime) != mtime_s:
            return True
    return False


# ---------------------------------------------------------------------------- packs
def _toml_value(text: str, section: str, key: str) -> str:
    """A string value of ``key`` in ``[section]`` of a small TOML file (no TOML parser needed)."""
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("[") and line.endswith("]"):
            current = line.strip("[] ")
            continue
        if current == section:
            m = re.match(rf"^{re.escape(key)}\s*=\s*[\"']([^\"']*)[\"']", line)
            if m:
                return m.group(1)
    return ""


def scan_pack(entry: Path, enabled: bool) -> ScannedPack:
    name = entry.name.removesuffix(".disabled")
    if entry.is_symlink():
        return ScannedPack(name, "link", enabled, note="a link: not followed, not adopted")
    if not _is_dir(entry):
        return ScannedPack(name, "file", enabled, note="a single-file pack: copied as local")
    commit, _ = read_head(entry)
    if commit or git_dir(entry) is not None:
        origin = read_origin(entry)
        if origin and commit:
            changed = worktree_changed(entry)
            note = "changed locally: the rebuild takes the clean commit" if changed else ""
            return ScannedPack(name, "git", enabled, origin=origin, commit=commit, note=note)
        return ScannedPack(name, "local", enabled, commit=commit, note="git without origin: local")
    pyproject = _read_text(entry / "pyproject.toml")
    publisher = _toml_value(pyproject, "tool.comfy", "PublisherId")
    pack_id = _toml_value(pyproject, "project", "name")
    version = _toml_value(pyproject, "project", "version")
    if publisher and pack_id and version:
        return ScannedPack(name, "registry", enabled, registry_id=pack_id, version=version)
    return ScannedPack(name, "local", enabled, note="no git origin, no registry id: local")


def scan_packs(custom_nodes: Path) -> tuple[ScannedPack, ...]:
    if not _is_dir(custom_nodes):
        return ()
    found: list[ScannedPack] = []
    entries: list[tuple[Path, bool]] = []
    for entry in sorted(custom_nodes.iterdir(), key=lambda p: p.name.lower()):
        if entry.name in ("__pycache__", ".disabled") or entry.name.startswith("."):
            if entry.name == ".disabled" and _is_dir(entry):
                entries += [(e, False) for e in sorted(entry.iterdir()) if e.name != "__pycache__"]
            continue
        if entry.is_file() and not entry.is_symlink() and entry.suffix != ".py":
            continue  # README.md, example files
        entries.append((entry, not entry.name.endswith(".disabled")))
    for entry, enabled in entries[:MAX_PACKS]:
        found.append(scan_pack(entry, enabled))
    return tuple(found)


# ---------------------------------------------------------------------------- python and torch
def _site_packages(env: Path) -> list[Path]:
    out = [env / "Lib" / "site-packages"]
    lib = env / "lib"
    if _is_dir(lib):
        out += [p / "site-packages" for p in sorted(lib.glob("python3*")) if _is_dir(p)]
    return [p for p in out if _is_dir(p)]


def _python_exe(env: Path) -> Path | None:
    for rel in ("python.exe", "Scripts/python.exe", "bin/python", "bin/python3", "python"):
        candidate = env / rel
        if os.path.lexists(candidate):
            return candidate
    return None


def read_python(env: Path) -> tuple[str, str, str]:
    """(python version, torch version, torch variant) of a venv or an embedded Python."""
    version = ""
    cfg = _read_text(env / "pyvenv.cfg")
    for line in cfg.splitlines():
        key, _, value = line.partition("=")
        if key.strip() in ("version_info", "version") and value.strip():
            version = value.strip()
            break
    if not version:
        for pth in sorted(env.glob("python3*._pth")):
            m = re.match(r"python3(\d+)\._pth$", pth.name)
            if m:
                version = f"3.{m.group(1)}"
    torch_version, variant = "", "none"
    for sp in _site_packages(env):
        try:
            names = sorted(os.listdir(sp))
        except OSError:
            continue
        for name in names:
            m = _TORCH.match(name)
            if m:
                torch_version = m.group(1)
                variant = torch_version.partition("+")[2]
        if not version:
            m2 = re.search(r"python(3\.\d+)", str(sp))
            version = m2.group(1) if m2 else version
    return version, torch_version, variant


# ---------------------------------------------------------------------------- models and user
def _walk_files(root: Path, budget: list[int]) -> tuple[int, int, bool]:
    """(files, bytes, truncated) under ``root``; links are not followed, ``budget`` shared."""
    files = size = 0
    stack = [root]
    while stack:
        current = stack.pop()
        try:
            with os.scandir(current) as it:
                for entry in it:
                    if budget[0] <= 0:
                        return files, size, True
                    budget[0] -= 1
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(Path(entry.path))
                    elif entry.is_file(follow_symlinks=False):
                        files += 1
                        size += entry.stat(follow_symlinks=False).st_size
        except OSError:
            continue
    return files, size, False


def _workflows(user: Path, budget: list[int]) -> tuple[tuple[str, ...], bool]:
    root = user / "default" / "workflows"
    if not _is_dir(root):
        return (), False
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):  # os.walk never follows links
        for name in filenames:
            if budget[0] <= 0:
                return tuple(sorted(found)), True
            budget[0] -= 1
            if name.lower().endswith(".json"):
                found.append((Path(dirpath) / name).relative_to(root).as_posix())
        dirnames[:] = [d for d in dirnames if not (Path(dirpath) / d).is_symlink()]
    return tuple(sorted(found)), False


def launch_args_from_script(text: str) -> tuple[str, ...]:
    """The ComfyUI arguments in a ``run_*.bat`` (what follows ``main.py``), minus our own flags."""
    for raw in text.splitlines():
        line = raw.strip()
        if "main.py" not in line or line.lower().startswith(("rem", "::", "echo")):
            continue
        try:
            tokens = shlex.split(line.replace("\\", "/"), posix=True)
        except ValueError:
            tokens = line.split()
        idx = next((i for i, t in enumerate(tokens) if t.endswith("main.py")), None)
        if idx is None:
            continue
        args = [t for t in tokens[idx + 1 :] if t not in ("%*", "$@")]
        out: list[str] = []
        i = 0
        while i < len(args):
            flag = args[i].split("=", 1)[0]
            if flag in _OWN_FLAGS:
                takes = _OWN_FLAGS[flag]
                has_eq = "=" in args[i]
                nxt = args[i + 1] if i + 1 < len(args) else ""
                if not has_eq and (takes or (takes is None and nxt and not nxt.startswith("-"))):
                    i += 1
                i += 1
                continue
            out.append(args[i])
            i += 1
        return tuple(out)
    return ()


# ---------------------------------------------------------------------------- the scan
def desktop_config_dirs() -> list[Path]:
    """Where the official desktop app keeps ``extra_models_config.yaml`` on this system."""
    home = Path.home()
    out = []
    if os.environ.get("APPDATA"):
        out.append(Path(os.environ["APPDATA"]) / "ComfyUI")
    out += [home / "Library" / "Application Support" / "ComfyUI", home / ".config" / "ComfyUI"]
    return out


def _desktop_config_for(base: Path, config_dirs: list[Path]) -> Path | None:
    for cfg_dir in config_dirs:
        cfg = cfg_dir / "extra_models_config.yaml"
        text = _read_text(cfg)
        m = re.search(r"^\s*base_path:\s*['\"]?([^'\"\n]+?)['\"]?\s*$", text, re.MULTILINE)
        if m:
            try:
                if Path(m.group(1)).expanduser().resolve() == base.resolve():
                    return cfg
            except OSError:
                continue
    return None


def _find_venv(comfyui: Path, root: Path) -> Path | None:
    for base in dict.fromkeys((comfyui, root, comfyui.parent)):
        for name in ("venv", ".venv"):
            candidate = base / name
            if _is_dir(candidate) and _python_exe(candidate) is not None:
                return candidate
    return None


def find_python(comfyui: Path) -> Path | None:
    """The interpreter an install at ``comfyui`` (its main.py folder) runs with, or None."""
    embedded = comfyui.parent / "python_embeded"
    if _is_dir(embedded):
        return _python_exe(embedded)
    venv = _find_venv(comfyui, comfyui.parent)
    return _python_exe(venv) if venv is not None else None


def _detect(path: Path) -> tuple[str, Path | None]:
    def is_comfyui(folder: Path) -> bool:
        return (folder / "main.py").is_file() and (
            _is_dir(folder / "comfy") or (folder / "folder_paths.py").is_file()
        )

    if _is_dir(path / "python_embeded") and is_comfyui(path / "ComfyUI"):
        return PORTABLE, path / "ComfyUI"
    if is_comfyui(path):
        return GIT, path
    if is_comfyui(path / "ComfyUI"):
        return GIT, path / "ComfyUI"
    if _is_dir(path / ".venv") and (_is_dir(path / "custom_nodes") or _is_dir(path / "models")):
        return DESKTOP, None
    return "", None


def scan(path: str | Path, *, desktop_config: list[Path] | None = None) -> ScanResult:
    """Scan ``path`` read-only; raises InvalidInput/NotFound when it is not a ComfyUI install."""
    try:
        return _scan(path, desktop_config)
    except OSError as exc:  # a folder we may not read, a disk error: a sentence, not a traceback
        where = exc.filename or path
        raise InvalidInput(
            f"{where} cannot be read: {exc.strerror or exc}.",
            "Give comfymanager read access to the whole install, or choose another folder.",
        ) from None


def _scan(path: str | Path, desktop_config: list[Path] | None) -> ScanResult:
    raw = Path(path).expanduser()
    if not raw.exists():
        raise NotFound(f"{raw} does not exist.", "Give the folder of an existing ComfyUI install.")
    if not raw.is_dir():
        raise InvalidInput(f"{raw} is not a folder.", "Give the folder that holds ComfyUI.")
    root = raw.resolve()
    kind, comfyui = _detect(root)
    if not kind:
        raise InvalidInput(
            f"{root} is not a ComfyUI install: no main.py with comfy/, no ComfyUI/ with "
            "python_embeded/, no desktop-app base folder (.venv with custom_nodes or models).",
            "Choose the ComfyUI folder itself, the portable folder, or the desktop app's base "
            "folder.",
        )
    warnings: list[str] = []
    base = comfyui if comfyui is not None else root
    commit = branch = origin = version = ""
    if comfyui is not None:
        commit, branch = read_head(comfyui)
        origin = read_origin(comfyui)
        version_py = _read_text(comfyui / "comfyui_version.py")
        m = re.search(r"__version__\s*=\s*['\"]([^'\"]+)", version_py)
        version = m.group(1) if m else ""
        if commit and worktree_changed(comfyui):
            warnings.append(
                "ComfyUI's files were changed locally: the rebuild takes the clean commit "
                "(the edits stay in the original; in place they run as they are)."
            )
        if not commit:
            warnings.append(
                "ComfyUI is not a git checkout: the rebuild uses the release "
                + (f"v{version}" if version else "of the default settings")
                + "."
            )
    else:
        warnings.append(
            "The desktop app ships ComfyUI inside the app: its commit is unknown here; the "
            "rebuild uses the default ComfyUI version of the settings."
        )
    # python
    env: Path | None
    if kind == PORTABLE:
        env = root / "python_embeded"
    elif kind == DESKTOP:
        env = root / ".venv"
    else:
        env = _find_venv(base, root)
    exe = _python_exe(env) if env is not None else None
    py_version = torch_version = ""
    variant = "none"
    if env is not None:
        py_version, torch_version, variant = read_python(env)
    if exe is None:
        warnings.append("No Python environment found: in-place adoption is not possible.")
    elif not _inside(root, exe) and kind != GIT:
        warnings.append(f"The Python at {exe} is outside the folder.")
    # packs, models, user
    packs = scan_packs(base / "custom_nodes")
    budget = [MAX_ENTRIES]
    models_dirs: list[str] = []
    files = size = 0
    truncated = False
    models = base / "models"
    if _is_dir(models):
        models_dirs.append(str(models))
        files, size, truncated = _walk_files(models, budget)
    elif os.path.lexists(models):
        warnings.append("models/ is a link: not followed; add its target in the model settings.")
    yamls: list[str] = []
    for candidate in (base / "extra_model_paths.yaml",):
        if candidate.is_file() and not candidate.is_symlink():
            yamls.append(str(candidate))
    if kind == DESKTOP:
        cfg = _desktop_config_for(root, desktop_config or desktop_config_dirs())
        if cfg is not None:
            yamls.append(str(cfg))
    user = base / "user"
    workflows, wf_truncated = _workflows(user, budget) if _is_dir(user) else ((), False)
    script_text, script_name = "", ""
    if kind == PORTABLE:
        scripts = sorted(p.name for p in root.glob("run_*.bat"))
        for name in ("run_nvidia_gpu.bat", "run_cpu.bat", *scripts):
            script_text = _read_text(root / name)
            if script_text:
                script_name = name
                break
    for pack in packs:
        if not pack.reproducible and pack.kind != "link":
            why = pack.note or "local"
            warnings.append(f"Pack {pack.folder}: {why}; not reproducible (a rebuild copies it).")
    if len(packs) >= MAX_PACKS:
        warnings.append(
            f"More than {MAX_PACKS} entries in custom_nodes: only the first are listed."
        )
        truncated = True
    if truncated or wf_truncated:
        warnings.append(f"More than {MAX_ENTRIES} files: counts are partial.")
    return ScanResult(
        path=str(root),
        kind=kind,
        comfyui_dir=str(comfyui) if comfyui is not None else "",
        comfyui_commit=commit,
        comfyui_branch=branch,
        comfyui_origin=origin,
        comfyui_version=version,
        python_exe=str(exe) if exe is not None else "",
        venv=str(env) if env is not None and exe is not None else "",
        python_version=py_version,
        torch_version=torch_version,
        torch_variant=variant,
        packs=packs,
        models_dirs=tuple(models_dirs),
        model_files=files,
        model_bytes=size,
        extra_model_paths=tuple(yamls),
        user_dir=str(user) if _is_dir(user) else "",
        workflows=workflows,
        has_settings=(user / "default" / "comfy.settings.json").is_file(),
        has_database=(user / "comfyui.db").is_file(),
        launch_script=script_name,
        launch_args=launch_args_from_script(script_text),
        truncated=truncated or wf_truncated,
        warnings=tuple(warnings),
    )
