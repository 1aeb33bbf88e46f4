"""The plan carries what it parsed: the import saves the workflow from the plan, without parsing
or reading the file a second time (a file changed between plan and apply does not matter)."""

from __future__ import annotations

from pathlib import Path

import pytest

from comfymanager.core.context import build_core_context
from comfymanager.core.importer import apply
from comfymanager.core.importer.plan import plan_import
from tests.fixtures.node_packs import node, ui_workflow, write_workflow


def test_apply_uses_the_parsed_workflow(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = build_core_context(data_dir)
    wf = write_workflow(tmp_path / "flow.json", ui_workflow(node(1, "KSampler")))
    original = wf.read_bytes()
    plan = plan_import(ctx, [wf], db=None)
    wf.write_text("{ this is not json any more")  # changed after the plan was made

    def no_second_parse(path: Path) -> object:
        raise AssertionError(f"{path} parsed again")

    monkeypatch.setattr(apply, "load_workflow", no_second_parse)
    assert apply._workflows_of(plan) == [("flow.json", original)]
