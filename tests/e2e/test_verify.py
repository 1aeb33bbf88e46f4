"""Verifying a project's node set in its own Python: the scan script against the fixture
ComfyUI and loader-shaped packs (a pack that fails to import, prints, calls sys.exit, a class
whose INPUT_TYPES raises, a pack that hangs), then a real import through the command line that
places models by the real definitions, ``verify --json`` and the cache."""

from __future__ import annotations

import ast
import hashlib
import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from comfymanager.core.errors import Cancelled, ExternalToolError
from comfymanager.core.progress import CancelToken, Reporter
from comfymanager.core.projects import Project, ProjectDirs
from comfymanager.core.verify import verify
from tests.fixtures.comfyui import FakeComfyUI, cli
from tests.fixtures.http_server import FileServer, make_safetensors
from tests.fixtures.node_packs import NodePacks, write_workflow
from tests.fixtures.verify_project import fill_scan_project, scan_project_record, video_workflow

HANG_INIT = """\
import subprocess, sys, time
from pathlib import Path
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
Path(__file__).with_name("child.pid").write_text(str(child.pid))
time.sleep(600)
NODE_CLASS_MAPPINGS = {}
"""


def _scan_project(root: Path, fake: FakeComfyUI, packs: NodePacks) -> ProjectDirs:
    dirs = ProjectDirs(root)
    fill_scan_project(dirs, fake, packs)
    return dirs


def _project(dirs: ProjectDirs) -> Project:
    return scan_project_record(dirs.root.name)


def test_scan_script_imports_only_the_standard_library() -> None:
    tree = ast.parse(verify.SCRIPT.read_text())
    imported = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.Import):
            imported |= {a.name.split(".")[0] for a in n.names}
        elif isinstance(n, ast.ImportFrom) and n.module and n.level == 0:
            imported.add(n.module.split(".")[0])
    comfy = {"comfy", "nodes", "folder_paths", "comfyui_version", "server"}  # ComfyUI's own
    assert imported - comfy <= set(sys.stdlib_module_names), imported - comfy
    assert "comfymanager" not in imported


def test_scan_reads_folders_and_survives_bad_packs(
    tmp_path: Path, fake_comfyui: FakeComfyUI, node_packs: NodePacks
) -> None:
    dirs = _scan_project(tmp_path / "scan", fake_comfyui, node_packs)
    # a single-file pack, loaded first, that silences logging for everything after it
    # ... and records the constraint a pip install of its own would be held to
    dirs.constraints.write_text("torch==2.8.0\n")
    (dirs.custom_nodes / "ComfyUI-AQuiet.py").write_text(
        "import logging, os\n"
        "with open(os.path.join(os.path.dirname(__file__), 'pip.txt'), 'w') as fh:\n"
        "    fh.write(os.environ.get('PIP_CONSTRAINT', ''))\n"
        "logging.root.handlers = []\n"
        "logging.root.setLevel(logging.CRITICAL)\n"
        "class FixQuiet:\n"
        "    @classmethod\n"
        "    def INPUT_TYPES(cls):\n"
        "        return {'required': {}}\n"
        "NODE_CLASS_MAPPINGS = {'FixQuiet': FixQuiet}\n"
    )
    lines: list[str] = []
    defs = verify.run_scan(
        _project(dirs), dirs, report=Reporter(log=lines.append), cancel=CancelToken()
    )
    c = defs.classes
    # core classes, a core extra loaded through the pack loader, pack classes with their folder
    assert c["CheckpointLoaderSimple"].model_inputs == {"ckpt_name": ("checkpoints",)}
    assert c["UpscaleModelLoader"].pack is None
    assert c["UpscaleModelLoader"].model_inputs == {"model_name": ("upscale_models",)}
    assert c["FixVideoModelLoader"].model_inputs == {"model": ("diffusion_models",)}
    assert c["FixVideoModelLoader"].pack == "ComfyUI-FixtureVideo"
    assert c["FixVideoModelLoader"].widgets == ("model", "base_precision", "attention_mode")
    assert c["FixVideoLoraSelect"].model_inputs == {"lora": ("loras",)}
    # a folder the pack registers itself, also behind an extension filter
    assert c["FixInpaintLoader"].model_inputs == {"head": ("inpaint",), "patch": ("inpaint",)}
    # a pack that prints while importing still loads; a class whose INPUT_TYPES raises is kept
    assert c["FixNoisyUpscaler"].model_inputs == {"model": ("upscale_models",)}
    assert "RuntimeError: no backend available" in c["FixNoisyRaises"].input_error
    # the import error of the pack that fails, and of the one that calls sys.exit
    assert defs.failed_packs == {
        "ComfyUI-FixtureBroken": "ModuleNotFoundError: No module named 'missingdep'",
        "ComfyUI-FixtureExit": "SystemExit: 3",
    }
    assert "FixBroken" not in c and "FixExitNode" not in c
    assert c["FixQuiet"].pack == "ComfyUI-AQuiet" and c["FixQuiet"].module == (
        "custom_nodes.ComfyUI-AQuiet"
    )
    assert (dirs.custom_nodes / "pip.txt").read_text() == str(dirs.constraints)
    # kept with the project in the shared format, stamped with the state it was made for
    kept = json.loads((dirs.root / verify.DEFS_FILE).read_text())
    assert kept["version"] == 1 and kept["made_by"] == "project-scan"
    assert kept["classes"]["FixInpaintLoader"]["model_inputs"] == {
        "head": ["inpaint"],
        "patch": ["inpaint"],
    }
    assert kept["state"] == verify.scan_state(_project(dirs), dirs)
    assert verify.read_definitions(dirs.root / verify.DEFS_FILE).classes.keys() == c.keys()


def test_scan_that_hangs_is_stopped_with_its_children(
    tmp_path: Path, fake_comfyui: FakeComfyUI, node_packs: NodePacks
) -> None:
    dirs = _scan_project(tmp_path / "hang", fake_comfyui, node_packs)
    hang = dirs.custom_nodes / "ComfyUI-FixtureHang"
    hang.mkdir()
    (hang / "__init__.py").write_text(HANG_INIT)
    started = time.monotonic()
    with pytest.raises(ExternalToolError) as info:
        verify.run_scan(_project(dirs), dirs, report=Reporter(), cancel=CancelToken(), timeout=3)
    assert "took longer than 3 s" in info.value.message
    assert "while loading the pack ComfyUI-FixtureHang" in info.value.message
    assert time.monotonic() - started < 20
    child = int((hang / "child.pid").read_text())
    assert not psutil.pid_exists(child) or psutil.Process(child).status() == psutil.STATUS_ZOMBIE
    assert not (dirs.root / verify.DEFS_FILE).exists()
    assert not list(dirs.root.glob(".node-scan.*"))  # no temp file left


def test_pack_that_ends_the_process_is_named(
    tmp_path: Path, fake_comfyui: FakeComfyUI, node_packs: NodePacks
) -> None:
    """os._exit bypasses every handler: the scan writes nothing, the error names the pack."""
    dirs = _scan_project(tmp_path / "abort", fake_comfyui, node_packs)
    abort = dirs.custom_nodes / "ComfyUI-FixtureAbort"
    abort.mkdir()
    (abort / "__init__.py").write_text("import os\nos._exit(0)\n")
    with pytest.raises(ExternalToolError) as info:
        verify.run_scan(_project(dirs), dirs, report=Reporter(), cancel=CancelToken())
    assert "while loading the pack ComfyUI-FixtureAbort" in info.value.message
    assert "Update or remove that pack" in (info.value.fix or "")
    assert not (dirs.root / verify.DEFS_FILE).exists()


def test_cancelled_scan_stops_at_once_with_its_children(
    tmp_path: Path, fake_comfyui: FakeComfyUI, node_packs: NodePacks
) -> None:
    dirs = _scan_project(tmp_path / "cancel", fake_comfyui, node_packs)
    hang = dirs.custom_nodes / "ComfyUI-FixtureHang"
    hang.mkdir()
    (hang / "__init__.py").write_text(HANG_INIT)
    cancel = CancelToken()
    timer = threading.Timer(1.0, cancel.cancel)
    timer.start()
    started = time.monotonic()
    try:
        with pytest.raises(Cancelled):
            verify.run_scan(_project(dirs), dirs, report=Reporter(), cancel=cancel, timeout=60)
    finally:
        timer.cancel()
    assert time.monotonic() - started < 10
    child = int((hang / "child.pid").read_text())
    assert not psutil.pid_exists(child) or psutil.Process(child).status() == psutil.STATUS_ZOMBIE


@pytest.mark.slow
@pytest.mark.usefixtures("stop_all")
def test_import_verifies_nodes_and_models_in_the_project(
    project_data_dir: Path,
    node_packs_env: NodePacks,
    http_files: FileServer,
    tmp_path: Path,
) -> None:
    base = make_safetensors(2048)
    video = make_safetensors(3072)
    sha = hashlib.sha256(base).hexdigest()
    urls = {
        "base": http_files.add("/m/base.safetensors", base),
        "video": http_files.add("/m/hyvid_720.safetensors", video),
    }
    store = project_data_dir / "models"
    (store / "upscale_models").mkdir(parents=True)
    (store / "upscale_models" / "4x_noisy.pth").write_bytes(b"x" * 64)  # already there
    wf = write_workflow(tmp_path / "Video Flow.json", video_workflow(urls, sha))
    args = ["import", str(wf), "--name", "vid", "--torch-backend", "none", "--yes"]
    proc = cli(project_data_dir, *args, check=False)
    err = proc.stderr
    assert "Verification in the project (ComfyUI 0.3.2" in err, err
    assert "Nodes: 2 of 10 node types missing:" in err
    assert (
        "FixBroken (ComfyUI-FixtureBroken failed to load: ModuleNotFoundError: "
        "No module named 'missingdep')" in err
    )
    assert "FixExitNode (ComfyUI-FixtureExit failed to load: SystemExit: 3)" in err
    assert "FixNoisyRaises" not in err  # not used by the workflow
    # the model the plan could not place went into the folder its real input reads
    got = store / "diffusion_models" / "hyvid_720.safetensors"
    assert got.read_bytes() == video
    assert "model diffusion_models/hyvid_720.safetensors: downloaded" in err
    block = err.split("Verification in the project")[1].split("error:")[0]
    assert "embedding" not in block  # the Note's text is not a model

    proc2 = cli(project_data_dir, "verify", "vid", "--json", check=False)
    assert proc2.returncode == 1  # two node types are missing
    data = json.loads(proc2.stdout)
    assert data["cached"] is True  # nothing changed since the import's check
    models = {m["name"]: m for m in data["models"]}
    assert models["hyvid_720.safetensors"]["folder"] == "diffusion_models"
    assert models["hyvid_720.safetensors"]["folder_from"] == "definition"
    assert models["hyvid_720.safetensors"]["status"] == "present"
    assert models["base.safetensors"]["folder"] == "checkpoints"
    assert models["base.safetensors"]["status"] == "present"
    assert models["hyvid/detail.safetensors"]["folder"] == "loras"
    assert models["hyvid/detail.safetensors"]["status"] == "needs-url"
    assert models["grouped_vae.safetensors"]["folder"] == "vae"  # inside the group node
    assert models["fooocus_head.pth"]["folder"] == "inpaint"  # the pack's own folder
    assert models["inpaint_v26.safetensors"]["folder"] == "inpaint"
    assert models["4x_noisy.pth"]["folder"] == "upscale_models"
    assert models["4x_noisy.pth"]["status"] == "present"
    assert models["hyvid/other.safetensors"]["folder"] == "loras"  # a converted widget
    assert set(models) == {
        "hyvid/other.safetensors",
        "base.safetensors",
        "hyvid_720.safetensors",
        "hyvid/detail.safetensors",
        "grouped_vae.safetensors",
        "fooocus_head.pth",
        "inpaint_v26.safetensors",
        "4x_noisy.pth",
    }  # every model named, nothing from the Note
    nodes = {n["class_type"]: n for n in data["nodes"]}
    assert nodes["FixBroken"]["status"] == "missing"
    assert nodes["FixBroken"]["pack"] == "ComfyUI-FixtureBroken"
    assert nodes["FixVideoVAELoader"]["status"] == "present"
    assert "Note" not in nodes
    assert data["summary"]["nodes"].startswith("2 of 10 node types missing")

    # a file put into the pack's folder is found; a forced run loads the nodes again
    inpaint = project_data_dir / "projects" / "vid" / "ComfyUI" / "models" / "inpaint"
    inpaint.mkdir(parents=True)
    (inpaint / "fooocus_head.pth").write_bytes(b"h" * 64)
    started = time.monotonic()
    proc3 = cli(project_data_dir, "verify", "vid", "--force", check=False)
    assert time.monotonic() - started < 15
    assert "loaded in" in proc3.stdout
    assert "[present] inpaint/fooocus_head.pth: folder from the node definition" in proc3.stdout
    # a folder the pack registers itself is a store folder like the others (no address here)
    assert "[needs-url] inpaint/inpaint_v26.safetensors" in proc3.stdout
    assert "[present] checkpoints/base.safetensors" not in proc3.stdout  # nothing to say
    again = json.loads(cli(project_data_dir, "verify", "vid", "--json", check=False).stdout)
    assert {m["name"]: m["status"] for m in again["models"]}["fooocus_head.pth"] == "present"
    assert again["cached"] is True

    # a package installed into the environment (a dependency added by hand): loaded again
    venv = project_data_dir / "projects" / "vid" / "venv"
    site = next(venv.glob("lib/python*/site-packages"), None) or venv / "Lib" / "site-packages"
    (site / "missingdep-1.0.dist-info").mkdir()
    after = json.loads(cli(project_data_dir, "verify", "vid", "--json", check=False).stdout)
    assert after["cached"] is False


def test_verify_unknown_project_is_a_clear_error(data_dir: Path) -> None:
    proc = cli(data_dir, "verify", "nope", check=False)
    assert proc.returncode == 1
    assert "There is no project named 'nope'" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = subprocess.run(
        [sys.executable, "-m", "comfymanager", "--data-dir", str(data_dir), "verify", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "--json" in proc.stdout


def test_older_comfyui_without_options_and_with_sync_loaders(
    tmp_path: Path, fake_comfyui: FakeComfyUI, node_packs: NodePacks
) -> None:
    """ComfyUI before comfy/options.py and async loading: init_extra_nodes(init_custom_nodes)
    is a plain function and load_custom_node returns a bool."""
    dirs = _scan_project(tmp_path / "old", fake_comfyui, node_packs)
    (dirs.comfyui / "comfy" / "options.py").unlink()
    nodes_py = dirs.comfyui / "nodes.py"
    text = nodes_py.read_text().replace("async def", "def").replace("await ", "")
    text = text.replace("def init_extra_nodes(init_custom_nodes=True, init_api_nodes=True):",
                        "def init_extra_nodes(init_custom_nodes=False):")  # fmt: skip
    assert "init_api_nodes" not in text
    nodes_py.write_text(text)
    # a server that cannot be built without its start-up: packs get a stand-in instance
    server_py = dirs.comfyui / "server.py"
    server_py.write_text(
        server_py.read_text().replace(
            "PromptServer.instance = self", "raise RuntimeError('needs the full start-up')"
        )
    )
    defs = verify.run_scan(_project(dirs), dirs, report=Reporter(), cancel=CancelToken())
    assert defs.classes["FixVideoVAELoader"].model_inputs == {"vae": ("vae",)}
    assert defs.classes["FixInpaintLoader"].pack == "ComfyUI-FixtureInpaint"
    assert set(defs.failed_packs) == {"ComfyUI-FixtureBroken", "ComfyUI-FixtureExit"}


def test_cached_until_the_project_changes(
    data_dir: Path, fake_comfyui: FakeComfyUI, node_packs: NodePacks
) -> None:
    from comfymanager.core.context import build_core_context
    from tests.fixtures.verify_project import make_scan_project

    ctx = build_core_context(data_dir)
    dirs = make_scan_project(ctx.paths, "vid", fake_comfyui, node_packs)
    first = verify.verify_project(ctx, "vid", Reporter(), CancelToken())
    assert not first.cached
    assert [n.class_type for n in first.missing] == ["FixBroken", "FixExitNode"]
    defs_file = dirs.root / verify.DEFS_FILE
    stamp = defs_file.stat().st_mtime_ns

    started = time.monotonic()
    again = verify.verify_project(ctx, "vid", Reporter(), CancelToken())
    assert again.cached and time.monotonic() - started < 1.0
    assert again.nodes == first.nodes and defs_file.stat().st_mtime_ns == stamp

    # the broken pack fixed by hand: files inside a pack are not part of the state, so the
    # answer stays the cached one until asked to load the nodes again
    broken = dirs.custom_nodes / "ComfyUI-FixtureBroken" / "__init__.py"
    # (a different size: Python trusts a cached .pyc of the same size written the same second)
    broken.write_text(broken.read_text().replace("import missingdep", "missingdep = 'fixed'"))
    assert verify.verify_project(ctx, "vid", Reporter(), CancelToken()).cached
    forced = verify.verify_project(ctx, "vid", Reporter(), CancelToken(), force=True)
    assert not forced.cached
    assert [n.class_type for n in forced.missing] == ["FixExitNode"]

    # a pack added to custom_nodes changes the state: the nodes are loaded again by themselves
    (dirs.custom_nodes / "ComfyUI-Extra.py").write_text("NODE_CLASS_MAPPINGS = {}\n")
    fresh = verify.verify_project(ctx, "vid", Reporter(), CancelToken())
    assert not fresh.cached and defs_file.stat().st_mtime_ns != stamp
    # and a workflow changed re-checks it (with the kept definitions: no scan needed)
    wf = dirs.workflows / "Video Flow.json"
    wf.write_text(wf.read_text().replace('"FixExitNode"', '"KSampler"'))
    stamp = defs_file.stat().st_mtime_ns
    checked = verify.verify_project(ctx, "vid", Reporter(), CancelToken())
    assert not checked.cached and not checked.missing
    assert checked.nodes_line() == "all 9 node types present"
    assert defs_file.stat().st_mtime_ns == stamp

    # a pack the import chose that is not (or no longer) on disk is said to be not installed
    shutil.rmtree(dirs.custom_nodes / "ComfyUI-FixtureBroken")
    gone = verify.verify_project(
        ctx, "vid", Reporter(), CancelToken(), expected_packs={"FixBroken": "ComfyUI-FixtureBroken"}
    )
    assert gone.nodes_line() == (
        "1 of 9 node types missing: FixBroken (ComfyUI-FixtureBroken is not installed)"
    )


def test_model_rows_place_each_name_once() -> None:
    """A name declared without a folder joins the row its real input names; a name the
    workflow already placed is not moved; an unplaced name with no definition stays unknown."""
    from comfymanager.core.verify.check import model_rows
    from comfymanager.core.verify.graph import WorkflowNeeds
    from comfymanager.core.verify.result import ClassDef, NodeDefinitions

    loader = ClassDef("Load", "custom_nodes.P", "P", ("vae", "model"), {"vae": ("vae",)})
    two = ClassDef("Two", "custom_nodes.P", "P", ("a", "b"), {"a": ("loras",), "b": ("inpaint",)})
    defs = NodeDefinitions("0.3.2", "project-scan", {"Load": loader, "Two": two}, {})
    needs = WorkflowNeeds(
        models=[
            ("vae", "a.safetensors", ()),
            (None, "a.safetensors", ("http://127.0.0.1:9/a",)),
            (None, "b.safetensors", ("http://127.0.0.1:9/b",)),
            ("checkpoints", "c.safetensors", ()),
            (None, "d.safetensors", ()),
        ],
        loader_values=[
            ("Load", "vae", "a.safetensors", 0),
            ("Load", None, "b.safetensors", 0),
            ("Load", "vae", "c.safetensors", 0),
            ("Unknown", None, "d.safetensors", 0),
            ("Two", None, "x.pth", 1),  # no widget name: by position among the model inputs
        ],
    )
    rows = {(r.folder, r.name): r for r in model_rows(needs, defs, {})}
    assert set(rows) == {
        ("vae", "a.safetensors"),
        ("vae", "b.safetensors"),
        ("checkpoints", "c.safetensors"),
        (None, "d.safetensors"),
        ("inpaint", "x.pth"),
    }
    assert rows[("vae", "a.safetensors")].urls == ["http://127.0.0.1:9/a"]
    assert rows[("vae", "a.safetensors")].folder_from == "workflow"
    assert rows[("vae", "b.safetensors")].urls == ["http://127.0.0.1:9/b"]
    assert rows[("vae", "b.safetensors")].folder_from == "definition"


def test_a_class_whose_inputs_fail_here_is_present_with_a_note(tmp_path: Path) -> None:
    from comfymanager.core.verify.check import check_nodes
    from comfymanager.core.verify.graph import WorkflowNeeds
    from comfymanager.core.verify.result import ClassDef, NodeDefinitions

    raises = ClassDef("FixNoisyRaises", "custom_nodes.N", "N", (), {}, "RuntimeError: no backend")
    defs = NodeDefinitions("0.3.2", "project-scan", {"FixNoisyRaises": raises}, {})
    needs = WorkflowNeeds(classes={"FixNoisyRaises", "Gone"})
    (check_raises, check_gone) = check_nodes(
        needs, defs, {}, scan_project_record("p"), ProjectDirs(tmp_path)
    )
    assert check_raises.status == "present"
    assert check_raises.error == "its inputs could not be read: RuntimeError: no backend"
    assert check_gone.status == "missing" and check_gone.pack is None
    assert check_gone.sentence == "Gone (no installed pack provides it)"
