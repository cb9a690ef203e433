"""`moescope stats --json` against the numpy implementation of the same analyses (bench/stats_analyses_numpy.py,
written from docs/metrics.md): load metrics, co-activation top pairs, the capacity simulation under both drop
policies, and the collapse detector's windowed warnings (dead, hot, low entropy, MaxVio, JS drift, hysteresis)."""
from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from conftest import ROOT, run_cli

PEER = ROOT / "bench" / "stats_analyses_numpy.py"

CASES = {
    # Skewed, a collapse planted half-way: hot experts, drift, MaxVio and entropy warnings that fire and clear.
    "collapse": (["--layers", "3", "--experts", "16", "--top-k", "4", "--tokens", "6000", "--skew", "zipf:1.2",
                  "--collapse", "layer=1,expert=5,from=0.5", "--seed", "7"], ["--window", "64", "--capacity-factor", "1", "--batch-tokens", "500"]),
    # Many experts, few tokens per window: dead experts come and go (past the kept limit); a short last batch.
    "dead": (["--layers", "2", "--experts", "64", "--top-k", "2", "--tokens", "3001", "--skew", "zipf:0.8", "--seed", "3"],
             ["--window", "32", "--capacity-factor", "0.8", "--batch-tokens", "256"]),
}


def close(a, b, rel=1e-9) -> bool:
    if a is None or b is None:
        return a is b
    return abs(a - b) <= rel * max(1.0, abs(a), abs(b))


@pytest.mark.parametrize("case", sorted(CASES))
def test_stats_matches_the_numpy_analyses(tmp_path: Path, case: str) -> None:
    synth, opts = CASES[case]
    trace = tmp_path / "t.arrows"
    run_cli("synth", "-o", str(trace), *synth)
    ours = json.loads(run_cli("stats", str(trace), "--json", *opts))
    peer = subprocess.run([sys.executable, str(PEER), str(trace), *opts], capture_output=True, text=True, check=True)
    ref = json.loads(peer.stdout)

    assert [c for layer in ours["layers"] for c in layer["load"]] == ref["load"]
    for l, layer in enumerate(ours["layers"]):
        for ours_key, ref_key in (("cv", "cv"), ("maxVio", "maxVio"), ("entropy", "entropy"), ("deadExperts", "dead")):
            assert close(layer[ours_key], ref[ref_key][l]), (l, ours_key)
        cap, rcap = layer["capacity"], ref["capacity"]["layers"][l]
        assert cap["droppedPerExpert"] == rcap["droppedPerExpert"], l
        for policy in ("probs", "position"):
            for k, v in rcap[policy].items():
                assert close(cap[policy][k], v), (l, policy, k)
        assert layer["coactivation"] == ref["coactivation"][l], l
    assert ours["capacity"]["batches"] == ref["capacity"]["batches"]
    assert ours["capacity"]["droppedShare"] > 0

    fired = sum(ref["fired"].values())
    assert len(ours["warnings"]) + ours["warningsSuppressed"] == fired
    kept = Counter(w["rule"] for w in ours["warnings"])
    assert len(kept) >= 2 and any(w["clearedAt"] is not None for w in ours["warnings"])
    for rule, expected in ref["warnings"].items():
        got = [w for w in ours["warnings"] if w["rule"] == rule]
        assert len(got) == len(expected), rule
        for a, b in zip(got, expected):
            assert (a["layerIndex"], a["expert"], a["window"], a["firstToken"], a["clearedAt"]) == (
                b["layerIndex"], b["expert"], b["window"], b["firstToken"], b["clearedAt"]), (rule, a, b)
            assert close(a["value"], b["value"]), (rule, a, b)
