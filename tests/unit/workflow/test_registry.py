"""lookup_registry against a local server speaking the Comfy Registry's comfy-nodes endpoint."""

from __future__ import annotations

import json
from collections.abc import Callable

import requests

from comfymanager.core.workflow.nodedb import NodeDatabase
from comfymanager.core.workflow.nodes import lookup_registry, resolution_from_hit
from tests.fixtures.http_server import FileServer, Served


def test_lookup_hit_and_miss(http_factory: Callable[[], FileServer], node_db: NodeDatabase) -> None:
    server = http_factory()
    body = {
        "id": "comfyui-kjnodes",
        "name": "KJNodes",
        "repository": "https://github.com/kijai/ComfyUI-KJNodes",
        "latest_version": {"version": "1.1.0"},
    }
    server.add("/comfy-nodes/My%20Node/node", Served(json.dumps(body).encode()))
    with requests.Session() as s:
        hit = lookup_registry(server.base, "My Node", s)
        assert hit is not None and hit.id == "comfyui-kjnodes" and hit.version == "1.1.0"
        assert lookup_registry(server.base, "Nobody", s) is None  # 404
    res = resolution_from_hit("My Node", hit, node_db)
    assert res.kind == "custom" and res.pack is not None
    assert res.pack.url == "https://github.com/kijai/ComfyUI-KJNodes"
