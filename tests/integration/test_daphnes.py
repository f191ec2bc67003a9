"""EVENTFLOW_DAPHNES: several Daphne processes accept on one listening socket (devstack's Stack
hands it to each with --fd); websocket clients on different processes see the same stream."""

from __future__ import annotations

import os
from contextlib import ExitStack

import psutil
import pytest
from websockets.sync.client import connect

from devstack.processes import Supervisor
from devstack.redis import free_port
from devstack.stack import Stack
from tests import bootstrap
from tests.integration.test_websocket_live import BackgroundPublisher, StreamClient, log_after, ws_url

pytestmark = [pytest.mark.live]


@pytest.fixture(scope="module")
def two_daphnes(stack):
    logs = bootstrap.TMP / "logs"
    out = open(logs / "daphnes.log", "a", buffering=1)
    daphnes = Stack(Supervisor(env=dict(os.environ), out=out, colour=False, logs_dir=logs),
                    port=free_port(), daphnes=2, sweep=False)
    daphnes.start_daphnes()
    daphnes.wait_listening(timeout=60)
    yield daphnes
    daphnes.stop()
    out.close()


def serving_pid(daphnes: Stack, ws) -> int | None:
    """The Daphne process holding the server side of this client's connection."""
    local = ws.socket.getsockname()[1]
    for name in daphnes.daphne_names():
        pid = daphnes.supervisor.children[name].pid
        if any(c.raddr and c.raddr.port == local for c in psutil.Process(pid).net_connections("tcp")):
            return pid
    return None


def test_clients_on_two_daphne_processes_of_one_port_see_the_same_contiguous_stream(stack, live_db, two_daphnes):
    base = f"http://127.0.0.1:{two_daphnes.port}"
    clients, pids = [], set()
    with ExitStack() as sockets:
        for attempt in range(12):
            # The kernel usually spreads accepts over both processes, but an idle pair may hand
            # every one to the same process; then that process is paused for one connection, so
            # the other one must accept it.
            paused = psutil.Process(next(iter(pids - {None}))) if attempt >= 4 and len(pids - {None}) == 1 else None
            if paused:
                paused.suspend()
            try:
                ws = sockets.enter_context(connect(ws_url(base), origin=base, open_timeout=10, max_size=None))
            finally:
                if paused:
                    paused.resume()
            clients.append(StreamClient(ws, base))
            pids.add(serving_pid(two_daphnes, ws))
            if len(pids - {None}) == 2 and len(clients) >= 2:
                break
        assert len(pids - {None}) == 2, f"every client landed on one process: {pids}"
        publisher = BackgroundPublisher(60)
        for client in clients:
            client.read_until(lambda c: publisher.done() and publisher.ids <= c.event_ids(), timeout=120)
    start = max(client.snapshot["seq"] for client in clients)
    upto = min(client.items[-1]["seq"] for client in clients)
    logged = [item["seq"] for item in log_after(base, start, upto)]
    assert logged, "nothing logged in the common range"
    for client in clients:
        seqs = [item["seq"] for item in client.items if start < item["seq"] <= upto]
        assert seqs == logged  # contiguous: every entry of the log in order, on either process
