"""The fidelity targets of issue 11 on the official templates and our fixtures, measured by
``bench/fidelity.py`` (the script behind docs/FIDELITY.md): they cannot regress silently."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from comfymanager.core.workflow.nodedb import NodeDatabase

SCRIPT = Path(__file__).resolve().parents[3] / "bench" / "fidelity.py"


@pytest.fixture(scope="module")
def fidelity() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fidelity_bench", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("with_db", [True, False])
def test_templates_meet_the_targets(
    fidelity: ModuleType, node_db: NodeDatabase, with_db: bool
) -> None:
    score = fidelity.measure_templates(node_db if with_db else None)
    assert score.files > 600 and score.named > 900
    assert score.missing == []  # no model named by a template is absent from its analysis
    assert score.wrong == []
    assert score.folder_right == score.folder_known
    assert score.reported_with_folder >= 0.99 * score.reported  # 99%+ without asking


def test_fixtures_report_every_model(fidelity: ModuleType, node_db: NodeDatabase) -> None:
    score = fidelity.measure_fixtures(node_db)
    assert score.missing == [] and score.wrong == []
    named = sum(len(truth) for truth in fidelity.FIXTURE_TRUTH.values())
    assert score.found == score.named == named
    assert score.reported == named  # nothing reported that the files do not name (Note text)
