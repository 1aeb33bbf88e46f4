"""Import planning, decisions, workflow file names and manifest export, without installing."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import requests

from comfymanager.core.context import CoreContext, build_core_context
from comfymanager.core.errors import InvalidInput
from comfymanager.core.importer.apply import safe_workflow_name, save_workflow
from comfymanager.core.importer.decision import (
    ImportDecision,
    unresolved,
    validate_decision,
)
from comfymanager.core.importer.manifest import export_manifest
from comfymanager.core.importer.plan import (
    ImportPlan,
    Suggestion,
    fill_sizes,
    make_model,
    plan_import,
)
from comfymanager.core.install.install import ProjectSpec
from comfymanager.core.models.hosts import Endpoints
from comfymanager.core.projects import PackRecord, Project, ProjectStore
from comfymanager.core.workflow.manifest import read_manifest
from comfymanager.core.workflow.nodedb import NodeDatabase, load_node_db, refresh_node_db
from tests.fixtures.http_server import FileServer
from tests.fixtures.node_packs import NodePacks, node, ui_workflow, write_workflow

SHA = "ab" * 32


@pytest.fixture
def ctx(data_dir: Path) -> CoreContext:
    return build_core_context(data_dir)


@pytest.fixture
def db(node_packs: NodePacks, ctx: CoreContext) -> NodeDatabase:
    refresh_node_db(str(node_packs.db_dir), ctx.paths.node_db)
    loaded = load_node_db(ctx.paths.node_db)
    assert loaded is not None
    return loaded


def _workflow(tmp_path: Path, node_packs: NodePacks) -> Path:
    url = "https://huggingface.co/org/repo/resolve/main/"
    return write_workflow(
        tmp_path / "my workflow.json",
        ui_workflow(
            node(1, "KSampler", [1, "fixed", 20], cnr_id="comfy-core", ver="0.3.40"),
            node(2, "GoodPackNode", [], cnr_id="comfyui-goodpack", ver=node_packs.good_pinned),
            node(3, "TwinNode"),
            node(4, "NobodyKnowsThisNode"),
            node(5, "CheckpointLoaderSimple", ["present.safetensors"]),
            node(
                6,
                "VAELoader",
                ["one.safetensors"],
                models=[
                    {
                        "name": "one.safetensors",
                        "url": url + "one.safetensors",
                        "directory": "vae",
                        "hash": SHA,
                        "hash_type": "SHA256",
                    }
                ],
            ),
            node(
                7,
                "LoraLoaderModelOnly",
                ["mirrored.safetensors", 1.0],
                models=[
                    {
                        "name": "mirrored.safetensors",
                        "url": url + "mirrored.safetensors",
                        "directory": "loras",
                    }
                ],
            ),
            node(8, "LoraLoader", ["muted.safetensors", 1, 1], mode=2),
            node(9, "UpscaleModelLoader", ["suggested_x4.safetensors"]),
            models=[
                {
                    "name": "mirrored.safetensors",
                    "directory": "loras",
                    "url": "https://example.com/mirror/mirrored.safetensors",
                },
            ],
        ),
    )


def _plan(ctx: CoreContext, db: NodeDatabase, tmp_path: Path, packs: NodePacks) -> ImportPlan:
    present = ctx.store / "checkpoints" / "present.safetensors"
    present.parent.mkdir(parents=True, exist_ok=True)
    present.write_bytes(b"model")
    return plan_import(ctx, [_workflow(tmp_path, packs)], db=db)


def test_plan_statuses(
    ctx: CoreContext, db: NodeDatabase, tmp_path: Path, node_packs: NodePacks
) -> None:
    plan = _plan(ctx, db, tmp_path, node_packs)
    packs = {p.title: p for p in plan.packs}
    assert packs["ComfyUI (built in)"].status == "built-in"
    assert "KSampler" in packs["ComfyUI (built in)"].classes
    good = packs["Good Pack"]
    assert good.status == "install"
    assert good.url == node_packs.good_url and good.commit == node_packs.good_pinned
    assert good.classes == ("GoodPackNode",)
    twin = packs["TwinNode"]
    assert twin.status == "candidates"  # never silently the first
    assert {c.url for c in twin.candidates} == set(node_packs.twin_urls)
    assert packs["NobodyKnowsThisNode"].status == "unknown"

    models = {m.key: m for m in plan.models}
    assert models["checkpoints/present.safetensors"].status == "present"
    one = models["vae/one.safetensors"]
    assert one.status == "download" and one.sha256 == SHA
    assert models["loras/mirrored.safetensors"].status == "mirrors"
    assert len(models["loras/mirrored.safetensors"].urls) == 2
    assert models["loras/muted.safetensors"].status == "inactive"
    upscaler = models["upscale_models/suggested_x4.safetensors"]
    assert upscaler.status == "unknown"  # a suggestion by name only is shown, not taken
    assert [s.filename for s in upscaler.suggestions] == ["suggested_x4.safetensors"]
    assert not upscaler.auto_picked
    assert plan.comfyui_version == "0.3.40"
    assert plan.free_bytes and plan.free_bytes > 0 and plan.fits
    assert any("TwinNode" in w for w in plan.warnings)


def test_suggestion_taken_only_on_exact_name_and_hash(ctx: CoreContext) -> None:
    good = Suggestion(
        "https://example.com/a/x.safetensors", "loras", "x.safetensors", "CivitAI", sha256=SHA
    )
    other_hash = Suggestion(
        "https://example.com/b/x.safetensors", "loras", "x.safetensors", "CivitAI", sha256="cd" * 32
    )
    other_name = Suggestion(
        "https://example.com/c/X.safetensors", "loras", "X.safetensors", "CivitAI", sha256=SHA
    )
    m = make_model(ctx.store, "loras", "x.safetensors", (), SHA, True, None, (other_hash, good))
    assert m.auto_picked and m.urls == (good.url,) and m.status == "download"
    for sugg in ((other_hash,), (other_name,)):
        m = make_model(ctx.store, "loras", "x.safetensors", (), SHA, True, None, sugg)
        assert not m.auto_picked and m.status == "unknown" and m.urls == ()
    m = make_model(ctx.store, "loras", "x.safetensors", (), None, True, None, (good,))
    assert not m.auto_picked  # no hash in the workflow: never automatic


def test_decision_validation(
    ctx: CoreContext, db: NodeDatabase, tmp_path: Path, node_packs: NodePacks
) -> None:
    plan = _plan(ctx, db, tmp_path, node_packs)
    target = ProjectSpec(name="x")
    twin = next(p for p in plan.packs if p.status == "candidates")
    unknown = next(p for p in plan.packs if p.status == "unknown")
    ok = ImportDecision(
        target,
        pack_choices={twin.key: twin.candidates[1].identity},
        pack_urls={unknown.key: "https://github.com/someone/ComfyUI-Nobody"},
        model_urls={
            "upscale_models/suggested_x4.safetensors": "https://example.com/suggested_x4.safetensors"
        },
    )
    validate_decision(plan, ok)
    with pytest.raises(InvalidInput, match="not a git URL"):
        validate_decision(plan, ImportDecision(target, pack_urls={unknown.key: "not a url"}))
    with pytest.raises(InvalidInput, match="not one of the packs"):
        validate_decision(plan, ImportDecision(target, pack_choices={twin.key: "https://x/y"}))
    with pytest.raises(InvalidInput, match=r"suggested_x4\.safetensors"):
        validate_decision(
            plan,
            ImportDecision(
                target,
                model_urls={"upscale_models/suggested_x4.safetensors": "ftp://host/file.pth"},
            ),
        )


def test_safe_workflow_names(tmp_path: Path) -> None:
    assert safe_workflow_name("my workflow.json") == "my workflow.json"
    assert safe_workflow_name("../../etc/passwd") == "passwd.json"
    assert safe_workflow_name("..\\..\\evil.json") == "evil.json"
    assert safe_workflow_name("a<b>:c?.json") == "a_b_c.json"
    assert safe_workflow_name("CON.json") == "workflow_CON.json"
    assert safe_workflow_name("...") == "workflow.json"
    assert len(safe_workflow_name("x" * 500)) <= 105

    first = save_workflow(tmp_path, "flow.json", b'{"a": 1}')
    assert first.name == "flow.json"
    assert save_workflow(tmp_path, "flow.json", b'{"a": 1}') == first  # same content: reused
    second = save_workflow(tmp_path, "flow.json", b'{"a": 2}')
    assert second.name == "flow (2).json"  # a different file is never overwritten
    assert first.read_bytes() == b'{"a": 1}' and second.read_bytes() == b'{"a": 2}'


def test_bad_file_names_the_file(ctx: CoreContext, tmp_path: Path) -> None:
    bad = tmp_path / "notes.json"
    bad.write_text('{"hello": ')
    with pytest.raises(InvalidInput, match=r"notes\.json"):
        plan_import(ctx, [bad], db=None)


def test_fill_sizes_with_head_requests(
    ctx: CoreContext, tmp_path: Path, http_files: FileServer
) -> None:
    url = http_files.add("/m/big.safetensors", b"x" * 12345)
    wf = write_workflow(
        tmp_path / "w.json",
        ui_workflow(
            node(
                1,
                "VAELoader",
                ["big.safetensors"],
                models=[{"name": "big.safetensors", "url": url, "directory": "vae"}],
            ),
        ),
    )
    plan = plan_import(ctx, [wf], db=None)
    assert plan.models[0].size is None and plan.download_bytes == 0 and plan.unknown_sizes == 1
    assert not http_files.hits  # planning is offline
    with requests.Session() as s:
        sized = fill_sizes(plan, s, Endpoints())
    assert sized.models[0].size == 12345
    assert sized.download_bytes == 12345 and sized.unknown_sizes == 0
    assert [h.method for h in http_files.hits] == ["HEAD"]


def test_export_manifest(ctx: CoreContext, node_packs: NodePacks) -> None:
    store = ProjectStore(ctx.paths)
    project = Project(
        id="demo",
        comfyui_source="https://github.com/comfyanonymous/ComfyUI.git",
        comfyui_ref="v0.3.2",
        comfyui_commit="a" * 40,
        torch_backend="none",
        python_version="3.11.9",
    )
    project.packs = [
        PackRecord(
            url=str(node_packs.good),
            folder="ComfyUI-GoodPack",
            commit=node_packs.good_pinned,
            status="installed",
        ),
        PackRecord(
            url="",
            folder="regpack",
            version="1.2.0",
            registry_id="regpack",
            commit="1.2.0",
            status="installed",
        ),
    ]
    data = b"weights" * 100
    (ctx.store / "vae").mkdir(parents=True)
    (ctx.store / "vae" / "v.safetensors").write_bytes(data)
    project.models = [{"directory": "vae", "name": "v.safetensors"}]
    store.create(project)
    wf_dir = store.dirs("demo").workflows
    write_workflow(wf_dir / "flow.json", ui_workflow(node(1, "KSampler")))
    (wf_dir / "api.json").write_text(json.dumps({"1": {"class_type": "KSampler", "inputs": {}}}))
    project.workflows = ["flow.json", "api.json"]
    store.save(project)

    manifest = read_manifest(export_manifest(ctx, "demo"))
    assert manifest.comfyui.commit == "a" * 40 and manifest.comfyui.ref == "v0.3.2"
    assert manifest.torch_backend == "none" and manifest.python_version == "3.11.9"
    git_pack, reg_pack = manifest.packs
    assert git_pack.url == node_packs.good.as_uri()  # local paths become file:// URLs
    assert git_pack.commit == node_packs.good_pinned
    assert reg_pack.url is None and reg_pack.registry_id == "regpack"
    assert reg_pack.version == "1.2.0"
    [model] = manifest.models
    assert (model.directory, model.name, model.size) == ("vae", "v.safetensors", len(data))
    assert model.sha256 == hashlib.sha256(data).hexdigest()
    assert [w.name for w in manifest.workflows] == ["flow"]  # API prompts are not UI workflows


def test_folder_for_a_model_whose_folder_is_unknown(ctx: CoreContext, tmp_path: Path) -> None:
    wf = write_workflow(
        tmp_path / "w.json",
        ui_workflow(
            node(1, "SomeNode", ["odd.safetensors"], models=[{"name": "odd.safetensors"}]),
            node(2, "VAELoader", ["v.safetensors"]),
        ),
    )
    plan = plan_import(ctx, [wf], db=None)
    assert {m.key: m.status for m in plan.models} == {
        "?/odd.safetensors": "unknown",
        "vae/v.safetensors": "unknown",
    }
    target = ProjectSpec(name="x")
    url = "https://example.com/odd.safetensors"
    open_rows = unresolved(plan, ImportDecision(target))
    assert sorted(
        (m.key, needs_url, needs_folder) for m, needs_url, needs_folder in open_rows.models
    ) == [
        ("?/odd.safetensors", True, True),
        ("vae/v.safetensors", True, False),
    ]
    with pytest.raises(InvalidInput, match=r"folder of odd\.safetensors is unknown") as info:
        validate_decision(plan, ImportDecision(target, model_urls={"?/odd.safetensors": url}))
    assert "loras" in str(info.value)  # the fix lists the folders
    chosen = ImportDecision(
        target,
        model_urls={"?/odd.safetensors": url},
        model_folders={"?/odd.safetensors": "clip"},  # a legacy name is its canonical folder
        skip_models=frozenset({"vae/v.safetensors"}),
    )
    validate_decision(plan, chosen)
    assert chosen.folder_of(plan.model("?/odd.safetensors")) == "text_encoders"
    assert unresolved(plan, chosen).models == ()  # (the packs are unknown without a node db)
    with pytest.raises(InvalidInput, match="Unknown model folder 'nope'") as info:
        validate_decision(plan, ImportDecision(target, model_folders={"?/odd.safetensors": "nope"}))
    assert "checkpoints" in str(info.value)
    with pytest.raises(InvalidInput, match="goes into vae"):
        validate_decision(
            plan, ImportDecision(target, model_folders={"vae/v.safetensors": "loras"})
        )
    with pytest.raises(InvalidInput, match="no model"):
        validate_decision(plan, ImportDecision(target, skip_models=frozenset({"?/other"})))


def _vhs_file(tmp_path: Path, name: str, cls: str, props: dict[str, object]) -> Path:
    data = {
        "last_node_id": 1,
        "last_link_id": 0,
        "version": 0.4,
        "links": [],
        "nodes": [{"id": 1, "type": cls, "mode": 0, "properties": props}],
    }
    path = tmp_path / name
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_classes_settled_by_the_other_file_and_by_the_project(
    ctx: CoreContext, node_db: NodeDatabase, tmp_path: Path
) -> None:
    hinted = _vhs_file(
        tmp_path, "a.json", "VHS_LoadVideo", {"aux_id": "Kosinkadink/ComfyUI-VideoHelperSuite"}
    )
    bare = _vhs_file(tmp_path, "b.json", "VHS_VideoCombine", {})
    plan = plan_import(ctx, [hinted, bare], db=node_db)
    assert [p.status for p in plan.packs] == ["install"]  # no "several candidates" row left
    assert set(plan.packs[0].classes) == {"VHS_LoadVideo", "VHS_VideoCombine"}
    alone = plan_import(ctx, [bare], db=node_db)
    (row,) = alone.packs
    assert row.status == "candidates"
    assert row.recommended is not None and row.recommended.endswith("comfyui-videohelpersuite")
    store = ProjectStore(ctx.paths)
    project = Project(id="vid", comfyui_source="x", torch_backend="none")
    project.packs = [PackRecord(url="https://github.com/Kosinkadink/ComfyUI-VideoHelperSuite",
                                folder="ComfyUI-VideoHelperSuite", status="installed")]  # fmt: skip
    store.save(project)
    in_project = plan_import(ctx, [bare], db=node_db, project="vid")
    assert [p.status for p in in_project.packs] == ["install"]
    assert not any("VHS_" in w for w in in_project.warnings)


def test_plan_for_a_project_uses_its_node_definitions(ctx: CoreContext, tmp_path: Path) -> None:
    from comfymanager.core.workflow.nodedefs import ClassDef, NodeDefinitions, write_definitions

    store = ProjectStore(ctx.paths)
    store.save(Project(id="vid", comfyui_source="x", torch_backend="none"))
    loader = ClassDef(
        "FixVideoModelLoader",
        "custom_nodes.ComfyUI-FixtureVideo",
        "ComfyUI-FixtureVideo",
        ("model", "precision"),
        {"model": ("diffusion_models",)},
    )
    scan = NodeDefinitions("0.3.64", "project-scan", {loader.name: loader})
    write_definitions(store.dirs("vid").root / "node-definitions.json", scan)
    wf = tmp_path / "w.json"
    nodes = [{"id": 1, "type": "FixVideoModelLoader", "mode": 0, "properties": {},
              "widgets_values": ["fixvideo_t2v.safetensors", "bf16"]}]  # fmt: skip
    wf.write_text(json.dumps({"version": 0.4, "links": [], "nodes": nodes}), encoding="utf-8")
    (new,) = plan_import(ctx, [wf], db=None).models
    assert new.key == "?/fixvideo_t2v.safetensors"  # a new project: the plan asks
    (known,) = plan_import(ctx, [wf], db=None, project="vid").models
    assert known.key == "diffusion_models/fixvideo_t2v.safetensors"
    lost = plan_import(ctx, [wf], db=None, project="nosuchproject")  # no context, no error
    assert lost.models[0].directory is None
