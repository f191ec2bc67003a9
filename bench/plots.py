"""PNG plots of a bench run, written next to results.json (matplotlib, the `bench` extra).

latency.png: the distribution of one hop, bare Celery (baseline) against eventflow's event hop;
throughput.png: each throughput step, offered against achieved orders/s, with the POST latency.
"""

from __future__ import annotations

from pathlib import Path

MISSING = "plots skipped: matplotlib is not installed (pip install -e '.[bench]')"


def write_plots(results: dict, out_dir: Path) -> list[Path]:
    """Write the plots the results have data for; returns their paths. Raises ImportError
    (with MISSING) when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only, no display
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(MISSING) from exc
    sections = results.get("sections") or {}
    written = []
    for name, draw in (("latency.png", _latency), ("throughput.png", _throughput)):
        figure = draw(plt, sections)
        if figure is None:
            continue
        path = Path(out_dir) / name
        figure.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(figure)
        written.append(path)
    return written


def _latency(plt, sections: dict):
    series = {"baseline (bare Celery)": (sections.get("baseline") or {}).get("hop") or {},
              "event hop (eventflow)": sections.get("event_hop") or {}}
    series = {label: s for label, s in series.items() if s.get("p50_ms") is not None}
    if not series:
        return None
    figure, (dist, bars) = plt.subplots(1, 2, figsize=(11, 4))
    for label, s in series.items():
        samples = sorted(s.get("latencies_ms") or [])
        if samples:  # the empirical distribution: share of hops done within x ms
            dist.step(samples, [(i + 1) / len(samples) for i in range(len(samples))], where="post", label=label)
    dist.set(title="One hop: share done within", xlabel="ms", ylabel="share of hops", ylim=(0, 1.02))
    dist.grid(alpha=0.3)
    if dist.lines:
        dist.legend(loc="lower right")
    else:
        dist.text(0.5, 0.5, "samples not recorded in this run", ha="center", va="center", transform=dist.transAxes)
    stats = ("p50_ms", "p99_ms", "mean_ms", "max_ms")
    width = 0.8 / len(series)
    for n, (label, s) in enumerate(series.items()):
        bars.bar([i + n * width for i in range(len(stats))], [s.get(k) or 0 for k in stats], width, label=label)
    bars.set_xticks([i + width * (len(series) - 1) / 2 for i in range(len(stats))], [k[:-3] for k in stats])
    bars.set(title="One hop: summary", ylabel="ms")
    bars.legend()
    return figure


def _throughput(plt, sections: dict):
    steps = sorted((s for s in (sections.get("throughput") or {}).get("steps") or [] if s.get("rate") is not None),
                   key=lambda s: s["rate"])
    if not steps:
        return None
    figure, rate = plt.subplots(figsize=(8, 4.5))
    offered = [s["rate"] for s in steps]
    achieved = [s.get("achieved_per_s") or 0 for s in steps]
    rate.plot(offered, offered, linestyle=":", color="grey", label="offered")
    rate.plot(offered, achieved, marker="o", label="achieved")
    for x, y, step in zip(offered, achieved, steps):
        if step.get("sustained") is False:
            rate.annotate("not sustained", (x, y), textcoords="offset points", xytext=(4, -12), fontsize=8)
    rate.set(title="Throughput steps", xlabel="offered orders/s", ylabel="orders/s")
    rate.grid(alpha=0.3)
    latency = rate.twinx()
    for key, style in (("p50_ms", "--"), ("p99_ms", "-.")):
        values = [(s.get("post") or {}).get(key) for s in steps]
        if any(v is not None for v in values):
            latency.plot(offered, [v if v is not None else float("nan") for v in values], style, color="tab:red",
                         label=f"POST {key[:-3]}")
    latency.set_ylabel("POST latency, ms")
    handles = rate.get_legend_handles_labels()
    more = latency.get_legend_handles_labels()
    rate.legend(handles[0] + more[0], handles[1] + more[1], loc="upper left")
    return figure
