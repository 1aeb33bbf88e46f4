"""Registry-only node packs through the real command line: the workflow names a pack by
``cnr_id`` + ``ver``, the (local) Comfy Registry says where its zip is, the zip is unpacked into
the project's custom_nodes at that version. Unsafe archives and unknown versions fail alone,
saying why, and write nothing outside custom_nodes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.fixtures.comfyui import cli, create_installed
from tests.fixtures.node_packs import NodePacks, node, ui_workflow, write_workflow
from tests.fixtures.portable import venv_python
from tests.fixtures.registry_server import Registry, zip_folder, zip_members

pytestmark = [pytest.mark.slow]

INIT_PY = """\
VERSION = "{version}"


class RegNode:
    @classmethod
    def INPUT_TYPES(cls):
        return {{"required": {{}}}}

    RETURN_TYPES = ()
    FUNCTION = "run"


NODE_CLASS_MAPPINGS = {{"RegNode": RegNode}}
"""


def _pack_folder(root: Path, version: str) -> Path:
    folder = root / f"regpack-{version}"
    (folder / "web" / "js").mkdir(parents=True)
    (folder / "__init__.py").write_text(INIT_PY.format(version=version))
    (folder / "requirements.txt").write_text("# nothing to install\n")
    (folder / "web" / "js" / "regpack.js").write_text(f"// regpack {version}\n")
    return folder


def _flow(path: Path, *packs: tuple[str, str]) -> Path:
    nodes = [node(1, "KSampler", cnr_id="comfy-core", ver="0.3.2")]
    for i, (pack_id, ver) in enumerate(packs, start=2):
        nodes.append(node(i, f"Node{i}", cnr_id=pack_id, ver=ver))
    return write_workflow(path, ui_workflow(*nodes))


def _packs_of(project: Path) -> dict[str, dict[str, str]]:
    data = json.loads((project / "project.json").read_text())
    return {p["folder"]: p for p in data.get("payload", data)["packs"]}


def test_registry_pack_installed_from_its_zip_at_the_pinned_version(
    project_data_dir: Path, node_packs_env: NodePacks, registry: Registry, tmp_path: Path
) -> None:
    for version in ("1.1.0", "1.2.0", "1.3.0"):
        prefix = "regpack" if version == "1.3.0" else ""  # one archive wraps a top folder
        registry.add("regpack", version, zip_folder(_pack_folder(tmp_path, version), prefix))
    wf = _flow(tmp_path / "Reg flow.json", ("regpack", "1.2.0"))

    proc = cli(project_data_dir, "import", str(wf), "--torch-backend", "none", "--yes")
    assert "pack regpack: installed" in proc.stderr
    project = project_data_dir / "projects" / "Reg flow"
    custom = project / "ComfyUI" / "custom_nodes"
    pack = custom / "regpack"
    assert (pack / "__init__.py").read_text() == INIT_PY.format(version="1.2.0")
    assert (pack / "web" / "js" / "regpack.js").read_text() == "// regpack 1.2.0\n"
    assert registry.install_requests("regpack") == ["1.2.0"]  # the pinned one, not the latest
    record = _packs_of(project)["regpack"]
    assert (record["registry_id"], record["version"], record["status"]) == (
        "regpack",
        "1.2.0",
        "installed",
    )
    python = venv_python(project / "venv")
    loaded = subprocess.run(
        [python, "-c", "import regpack; print(regpack.VERSION, list(regpack.NODE_CLASS_MAPPINGS))"],
        cwd=custom,
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout.split() == ["1.2.0", "['RegNode']"]

    # a workflow pinning a newer version replaces the folder; nothing is left beside it
    newer = _flow(tmp_path / "newer.json", ("regpack", "1.3.0"))
    cli(project_data_dir, "import", str(newer), "--project", "Reg flow", "--yes")
    assert (pack / "__init__.py").read_text() == INIT_PY.format(version="1.3.0")
    assert not (pack / "regpack").exists()  # the archive's top folder is the pack itself
    assert sorted(p.name for p in custom.iterdir()) == ["README.md", "regpack"]


def test_unsafe_archives_and_unknown_versions_fail_alone(
    project_data_dir: Path, node_packs_env: NodePacks, registry: Registry, tmp_path: Path
) -> None:
    create_installed(project_data_dir, "target")
    outside = tmp_path / "abs-evil.py"
    registry.add("regpack", "1.2.0", zip_folder(_pack_folder(tmp_path, "1.2.0")))
    registry.add("climber", "1.0.0", zip_members({"__init__.py": b"", "../evil.py": b"x = 1"}))
    registry.add("absolute", "1.0.0", zip_members({"__init__.py": b"", str(outside): b"x = 1"}))
    registry.add("ghost", "1.0.0", zip_folder(_pack_folder(tmp_path / "ghost", "1.0.0")))
    wf = _flow(
        tmp_path / "mixed.json",
        ("regpack", "1.2.0"),
        ("climber", "1.0.0"),
        ("absolute", "1.0.0"),
        ("ghost", "9.9.9"),
    )

    proc = cli(project_data_dir, "import", str(wf), "--project", "target", "--yes", check=False)
    assert proc.returncode == 1, proc.stderr
    err = proc.stderr
    assert "pack regpack: installed" in err  # the good pack is not held back by the others
    assert "pack climber: failed" in err and "'../evil.py'" in err
    assert "leaves the pack folder" in err
    assert "pack absolute: failed" in err and "an absolute path" in err and str(outside) in err
    assert "pack ghost: failed" in err
    assert "no node pack 'ghost' version 9.9.9" in err
    assert "incomplete" in err

    project = project_data_dir / "projects" / "target"
    custom = project / "ComfyUI" / "custom_nodes"
    assert sorted(p.name for p in custom.iterdir()) == ["README.md", "regpack"]
    assert not outside.exists()
    assert list(project_data_dir.rglob("evil.py")) == []
    assert list(tmp_path.rglob("evil.py")) == []
    packs = _packs_of(project)
    assert packs["climber"]["status"] == packs["ghost"]["status"] == "failed"
    assert packs["regpack"]["status"] == "installed"


def test_unpinned_registry_pack_records_the_version_it_got(
    project_data_dir: Path, node_packs_env: NodePacks, registry: Registry, tmp_path: Path
) -> None:
    """A workflow naming a registry pack without ``ver`` gets the latest; the project records
    that version, so an export rebuilds the same pack elsewhere."""
    for version in ("2.0.0", "2.1.0"):
        registry.add("regpack", version, zip_folder(_pack_folder(tmp_path, version)))
    nodes = [node(1, "KSampler", cnr_id="comfy-core"), node(2, "RegNode", cnr_id="regpack")]
    wf = write_workflow(tmp_path / "Unpinned.json", ui_workflow(*nodes))

    cli(project_data_dir, "import", str(wf), "--torch-backend", "none", "--yes")
    project = project_data_dir / "projects" / "Unpinned"
    assert registry.install_requests("regpack") == [""]  # asked for the latest
    assert _packs_of(project)["regpack"]["version"] == "2.1.0"
    manifest = json.loads(cli(project_data_dir, "export", "Unpinned").stdout)
    [pack] = [p for p in manifest["packs"] if p.get("registry_id") == "regpack"]
    assert pack["version"] == "2.1.0"


def test_an_exported_project_pins_the_registry_zip_it_ran(
    project_data_dir: Path, node_packs_env: NodePacks, registry: Registry, tmp_path: Path
) -> None:
    import hashlib

    archive = zip_folder(_pack_folder(tmp_path, "1.2.0"))
    registry.add("regpack", "1.2.0", archive)  # the registry publishes no checksum
    wf = _flow(tmp_path / "Pinned.json", ("regpack", "1.2.0"))
    cli(project_data_dir, "import", str(wf), "--torch-backend", "none", "--yes")

    exported = cli(project_data_dir, "export", "Pinned").stdout
    packs = json.loads(exported)["packs"]
    assert [p["archive_sha256"] for p in packs if p.get("registry_id") == "regpack"] == [
        hashlib.sha256(archive).hexdigest()
    ]

    # the registry now serves other bytes under the same version: the rebuild refuses them
    registry.add("regpack", "1.2.0", zip_folder(_pack_folder(tmp_path / "changed", "1.2.0")))
    manifest = tmp_path / "pinned-manifest.json"
    manifest.write_text(exported)
    proc = cli(project_data_dir, "create", "Rebuilt", "--manifest", str(manifest), check=False)
    rebuilt = project_data_dir / "projects" / "Rebuilt"
    record = _packs_of(rebuilt)["regpack"]
    assert record["status"] == "failed", proc.stderr
    assert "sha256" in record["error"], record["error"]
    assert not (rebuilt / "ComfyUI" / "custom_nodes" / "regpack" / "__init__.py").exists()
