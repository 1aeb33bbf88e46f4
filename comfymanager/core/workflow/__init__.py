"""Workflow analysis: parse any workflow file, resolve node packs and model files, manifests.

Import the pieces from their modules (``formats``, ``nodedb``, ``nodes``, ``models``,
``manifest``, ``plan``); the main entry points are re-exported here.
"""

from __future__ import annotations

from comfymanager.core.workflow.analyze import Analysis, analysis_to_json, analyze
from comfymanager.core.workflow.formats import LoadedWorkflow, WorkflowError, load_workflow
from comfymanager.core.workflow.nodedb import NodeDatabase, load_node_db, refresh_node_db
from comfymanager.core.workflow.nodedb_fetch import NodeDbStatus

__all__ = [
    "Analysis",
    "LoadedWorkflow",
    "NodeDatabase",
    "NodeDbStatus",
    "WorkflowError",
    "analysis_to_json",
    "analyze",
    "load_node_db",
    "load_workflow",
    "refresh_node_db",
]
