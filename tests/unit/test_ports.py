"""The port pool: one validation rule, binds like ComfyUI, claims shared by every data root."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from comfymanager.core.errors import Conflict, InvalidInput
from comfymanager.core.paths import DataPaths
from comfymanager.core.run import ports


@pytest.fixture(autouse=True)
def runtime_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Claims in a folder of this test, never the user's real ones."""
    folder = tmp_path / "runtime"
    monkeypatch.setenv(ports.RUNTIME_ENV, str(folder))
    return folder


@pytest.mark.parametrize("bad", [0, 80, 1023, 65536, 99999, -1, "abc", "", True])
def test_validate_port_refuses_with_the_rule(bad: object) -> None:
    with pytest.raises(InvalidInput) as err:
        ports.validate_port(bad)
    assert "1024" in (err.value.fix or "") and "65535" in (err.value.fix or "")


@pytest.mark.parametrize("good", [1024, 4001, "8188", 65535])
def test_validate_port_accepts(good: object) -> None:
    assert ports.validate_port(good) == int(str(good))


def test_settings_use_the_same_rule() -> None:
    from comfymanager.core.settings import Settings

    with pytest.raises(InvalidInput) as err:
        Settings(port_min=80, port_max=4100).validate()
    assert "80 is out of range" in err.value.message


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_listener_on_ipv6_loopback_only_counts_as_taken(tmp_path: Path) -> None:
    paths = DataPaths(tmp_path / "data").ensure()
    with socket.socket(socket.AF_INET6) as s:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind(("::1", 0))
        s.listen(0)
        port = s.getsockname()[1]
        # fill its backlog: a connect test alone would time out and call it free
        fillers = []
        for _ in range(3):
            c = socket.socket(socket.AF_INET6)
            c.setblocking(False)
            c.connect_ex(("::1", port))
            fillers.append(c)
        try:
            assert not ports.port_is_free(port)
            with pytest.raises(Conflict):
                ports.allocate(
                    paths, "a", fixed=port, port_range=(port, port), in_use_by_projects=dict
                )
            got = ports.allocate(
                paths, "a", fixed=None, port_range=(port, port + 20), in_use_by_projects=dict
            )
            assert got != port
        finally:
            for c in fillers:
                c.close()


def test_our_own_time_wait_sockets_do_not_block_a_restart() -> None:
    port = _free_port()
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", port))
    server.listen()
    client = socket.create_connection(("127.0.0.1", port))
    conn, _ = server.accept()
    conn.close()  # the server side closes first: its end of the connection sits in TIME_WAIT
    client.close()
    server.close()
    assert ports.bindable(port)
    assert ports.port_is_free(port)


def test_claims_are_released_and_die_with_their_owner(tmp_path: Path) -> None:
    paths = DataPaths(tmp_path / "data").ensure()
    low = _free_port()
    a = ports.allocate(paths, "a", fixed=None, port_range=(low, low + 30), in_use_by_projects=dict)
    b = ports.allocate(paths, "b", fixed=None, port_range=(low, low + 30), in_use_by_projects=dict)
    assert a != b and set(ports.claims()) == {a, b}
    ports.release(paths, "a")
    assert set(ports.claims()) == {b}
    # a claim whose owner is gone (a killed command) is not a claim
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    ports.hold(paths, "b", {"pid": int(dead.stdout), "create_time": 1.0})
    assert ports.claims() == {}


ALLOCATE_FIVE = """
import json, sys
from comfymanager.core.run import ports
from comfymanager.core.paths import DataPaths
paths = DataPaths(__import__("pathlib").Path(sys.argv[1])).ensure()
low = int(sys.argv[2])
sys.stdin.readline()  # start together
got = [ports.allocate(paths, f"p{i}", fixed=None, port_range=(low, low + 40),
                      in_use_by_projects=dict) for i in range(5)]
print(json.dumps(got), flush=True)
sys.stdin.readline()  # hold the claims until told
"""


def test_two_data_roots_allocating_at_once_never_collide(tmp_path: Path) -> None:
    low = _free_port()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", ALLOCATE_FIVE, str(tmp_path / f"root{i}"), str(low)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    try:
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        got: list[int] = []
        for p in procs:
            assert p.stdout is not None
            got += json.loads(p.stdout.readline())
        assert len(got) == 10 and len(set(got)) == 10, got
        claims = ports.claims()
        assert set(claims) == set(got)
        assert len({c["root"] for c in claims.values()}) == 2
    finally:
        for p in procs:
            p.communicate("done\n", timeout=30)
    assert ports.claims() == {}  # both owners ended: nothing held for ever


@pytest.mark.skipif(not hasattr(__import__("os"), "getuid"), reason="POSIX file ownership")
def test_a_claims_folder_planted_by_someone_else_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import tempfile

    monkeypatch.delenv(ports.RUNTIME_ENV)
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setattr(tempfile, "gettempdir", lambda: str(tmp_path))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / f"comfymanager-{os.getuid()}").symlink_to(elsewhere)
    paths = DataPaths(tmp_path / "data").ensure()
    with pytest.raises(Conflict) as err:
        ports.allocate(paths, "a", fixed=None, port_range=(4001, 4100), in_use_by_projects=dict)
    assert "is a link or belongs to another user" in err.value.message
    assert not list(elsewhere.iterdir())
