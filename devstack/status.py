"""What `make run` is restarting right now: data/.run/status.json, written by devstack.run
and read by /healthz, so that the health check names what is down meanwhile."""

from __future__ import annotations

import json
import os
from pathlib import Path


def status_path(data_dir: Path) -> Path:
    return Path(data_dir) / ".run" / "status.json"


def write_down(data_dir: Path, down: dict[str, str]) -> None:
    """Record the parts that are down (name: what is happening), for our pid."""
    path = status_path(data_dir)
    scratch = path.with_suffix(".tmp")
    scratch.write_text(json.dumps({"pid": os.getpid(), "down": down}))
    scratch.replace(path)  # readers never see half a file


def clear(data_dir: Path) -> None:
    status_path(data_dir).unlink(missing_ok=True)


def read_down(data_dir: Path) -> dict[str, str]:
    """The parts a running `make run` is restarting; {} when none (or no `make run` is alive)."""
    try:
        status = json.loads(status_path(data_dir).read_text())
        os.kill(int(status["pid"]), 0)  # a file left by a killed run says nothing
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return dict(status.get("down") or {})
