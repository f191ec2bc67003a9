"""The table printed at the end and bench/results.json."""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results.json"


def row(figure: str, value, unit: str = "", *, baseline=None, ratio=None, target: str = "", met: bool | None = None,
        note: str = "") -> dict:
    return {"figure": figure, "value": value, "unit": unit, "baseline": baseline, "ratio": ratio,
            "target": target, "met": met, "note": note}


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def format_table(rows: list[dict]) -> str:
    header = ["figure", "value", "baseline", "ratio", "target", "met?"]
    lines = []
    for r in rows:
        if r["value"] is None and r["note"]:
            value = f"not measured: {r['note']}"
        else:
            value = f"{_cell(r['value'])} {r['unit']}".strip()
        met = {True: "yes", False: "NO", None: "-"}[r["met"]]
        lines.append([r["figure"], value, _cell(r["baseline"]), _cell(r["ratio"]), r["target"] or "-", met])
    widths = [max(len(str(x[i])) for x in [header, *lines]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [fmt.format(*header), fmt.format(*("-" * w for w in widths))]
    out += [fmt.format(*map(str, line)) for line in lines]
    return "\n".join(out)


def write_results(results: dict, path: Path = RESULTS) -> Path:
    path.write_text(json.dumps(results, indent=2, sort_keys=False, default=str) + "\n")
    return path
