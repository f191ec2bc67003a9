"""bench/plots.py draws the bench's PNG plots from a results dict, and the bench says so
plainly when matplotlib (the `bench` extra) is missing."""

from __future__ import annotations

import sys

import pytest

from bench.plots import MISSING, write_plots


def results(*, samples: bool = True) -> dict:
    base = [3.1, 3.4, 4.0, 4.6, 5.2, 7.9, 11.3]
    hop = [4.2, 5.0, 5.9, 6.1, 7.4, 10.2, 15.5]
    return {"sections": {
        "baseline": {"hop": {"samples": 7, "p50_ms": 4.6, "p99_ms": 11.3, "mean_ms": 5.6, "max_ms": 11.3,
                             **({"latencies_ms": base} if samples else {})}},
        "event_hop": {"samples": 7, "p50_ms": 6.1, "p99_ms": 15.5, "mean_ms": 7.8, "max_ms": 15.5,
                      **({"latencies_ms": hop} if samples else {})},
        "throughput": {"steps": [
            {"rate": 2.0, "achieved_per_s": 2.0, "sustained": True, "post": {"p50_ms": 80.0, "p99_ms": 150.0}},
            {"rate": 4.0, "achieved_per_s": 3.9, "sustained": True, "post": {"p50_ms": 95.0, "p99_ms": 240.0}},
            {"rate": 8.0, "achieved_per_s": 5.1, "sustained": False, "post": {"p50_ms": 400.0, "p99_ms": 900.0}},
        ]},
    }}


@pytest.mark.parametrize("samples", [True, False], ids=["with-samples", "summary-only"])
def test_the_plots_are_written_next_to_the_results(tmp_path, samples):
    written = write_plots(results(samples=samples), tmp_path)
    assert sorted(p.name for p in written) == ["latency.png", "throughput.png"]
    for path in written:
        assert path.parent == tmp_path
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000


def test_a_run_without_a_section_draws_only_what_it_has(tmp_path):
    data = results()
    del data["sections"]["throughput"]
    assert [p.name for p in write_plots(data, tmp_path)] == ["latency.png"]
    assert write_plots({"sections": {}}, tmp_path / "..") == []  # nothing to draw, nothing written


def test_without_matplotlib_the_bench_says_how_to_get_the_plots(tmp_path, monkeypatch, capsys):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib raises ImportError
    with pytest.raises(ImportError, match=r"pip install -e '\.\[bench\]'"):
        write_plots(results(), tmp_path)
    from bench.__main__ import write_plots_or_say

    assert write_plots_or_say(results(), tmp_path) == []
    assert f"bench: {MISSING}" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []
