"""`python -m bench.wsfleet WS_URL ORIGIN N`: N websocket clients of /ws/events/ in one process.

Each client records, for every BenchBroadcast it receives, the lag from the
publisher's `sent_at` to its arrival. Commands on stdin: `dump PATH` writes
{probe_id: [clients that got it, worst lag]} plus errors and CPU time, and starts
afresh; `quit` (or end of input) closes the sockets. A socket the server closes is
reported in `errors` and reconnected. Prints `ready N` once every
client has its snapshot. A regex reads the payload (cheaper than json.loads on
every frame of every client, which would make the clients the bottleneck).
"""

from __future__ import annotations

import asyncio
import json
import re
import resource
import sys
import time

from websockets.asyncio.client import connect

PAYLOAD = re.compile(rb'"probe_id": "([^"]+)", "sent_at": ([0-9.eE+-]+)')


class Fleet:
    def __init__(self) -> None:
        self.seen: dict[str, list] = {}
        self.errors: list[str] = []
        self.frames = 0

    def record(self, raw: bytes, now: float) -> None:
        self.frames += 1
        for probe_id, sent_at in PAYLOAD.findall(raw):
            lag = now - float(sent_at)
            entry = self.seen.get(probe_id)
            if entry is None:
                self.seen[probe_id] = [1, lag]
            else:
                entry[0] += 1
                if lag > entry[1]:
                    entry[1] = lag

    async def client(self, url: str, origin: str, ready: asyncio.Queue) -> None:
        """One socket; when the server drops it, reconnect like a browser would (and say so)."""
        first = True
        while True:
            try:
                async with connect(url, origin=origin, max_size=None, open_timeout=60, ping_interval=None) as ws:
                    await asyncio.wait_for(ws.recv(), 60)  # the snapshot
                    if first:
                        first = False
                        await ready.put(True)
                    while True:
                        raw = await ws.recv(decode=False)
                        self.record(raw, time.time())
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.errors.append(f"{type(exc).__name__}: {exc}"[:200])
                if first:
                    first = False
                    await ready.put(False)
                await asyncio.sleep(0.2)

    def dump(self, path: str) -> None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        data = {"events": {k.decode(): v for k, v in self.seen.items()}, "errors": self.errors,
                "frames": self.frames, "cpu_seconds": usage.ru_utime + usage.ru_stime}
        with open(path, "w") as handle:
            json.dump(data, handle)
        self.seen = {}
        self.frames = 0
        self.errors = []


async def main(url: str, origin: str, count: int) -> None:
    fleet = Fleet()
    ready: asyncio.Queue = asyncio.Queue()
    tasks = []
    for _ in range(count):
        tasks.append(asyncio.ensure_future(fleet.client(url, origin, ready)))
        await asyncio.sleep(0.01)
    ok = sum([await ready.get() for _ in range(count)])
    print(f"ready {ok}", flush=True)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = (await reader.readline()).decode().strip()
        if not line or line == "quit":
            break
        if line.startswith("dump "):
            fleet.dump(line[5:])
            print("dumped", flush=True)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
