"""A model whose MoE layers differ in E and K (fixtures/models/hf-mixed-shape: layer 0 8 experts top-2, layer 1 4
experts top-1) recorded by `moescope run`, read with pyarrow as docs/trace-format.md describes it (per-layer shapes
in the schema metadata, padding NO_EXPERT = 65535 / weight 0 / logit -Inf), and `stats --json` checked per layer
against numpy over each layer's own E and K: load, CV, MaxVio, entropy, dead experts and the capacity simulation
(the numpy peer bench/stats_analyses_numpy.py, one layer at a time). `export --parquet` keeps the trace's layout."""
from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path
from types import ModuleType

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest

from conftest import ROOT, run_cli

MODEL = ROOT / "fixtures" / "models" / "hf-mixed-shape" / "model.onnx"
NO_EXPERT = 65535


def peer() -> ModuleType:
    spec = importlib.util.spec_from_file_location("peer", ROOT / "bench" / "stats_analyses_numpy.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("mixed") / "t.arrows"
    run_cli("run", str(MODEL), "--no-ui", "--max-tokens", "4", "--logits", "--record", str(path))
    return path


def read(path: Path) -> tuple[pa.Table, dict]:
    t = ipc.open_stream(str(path)).read_all()
    schema = json.loads(t.schema.metadata[b"moescope"])["schema"]
    return t, schema


def test_the_trace_is_padded_as_documented(trace: Path) -> None:
    t, s = read(trace)
    assert (s["layerExperts"], s["layerTopK"], s["experts"], s["topK"]) == ([8, 4], [2, 1], 8, 2)
    L, E, K = len(s["layers"]), s["experts"], s["topK"]
    ex = t.column("experts").combine_chunks().values.to_numpy().reshape(-1, L, K)
    w = t.column("weights").combine_chunks().values.to_numpy(zero_copy_only=False).reshape(-1, L, K)
    lg = t.column("logits").combine_chunks().values.to_numpy(zero_copy_only=False).reshape(-1, L, E)
    for l, (e, k) in enumerate(zip(s["layerExperts"], s["layerTopK"])):
        assert (ex[:, l, k:] == NO_EXPERT).all() and (w[:, l, k:] == 0).all()
        assert (ex[:, l, :k] < e).all()
        assert np.isneginf(lg[:, l, e:]).all() and np.isfinite(lg[:, l, :e]).all()
        # the weights are softmax probabilities over the layer's own E (norm_topk_prob false): they follow from its logits
        z = lg[:, l, :e].astype(np.float64)
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        picked = np.take_along_axis(p, ex[:, l, :k].astype(np.int64), axis=1)
        assert np.allclose(w[:, l, :k].astype(np.float64), picked, atol=2e-3)


def test_stats_per_layer_over_its_own_experts(trace: Path) -> None:
    t, s = read(trace)
    ours = json.loads(run_cli("stats", str(trace), "--json", "--capacity-factor", "1", "--batch-tokens", "100"))
    L, K = len(s["layers"]), s["topK"]
    ex = t.column("experts").combine_chunks().values.to_numpy().reshape(-1, L, K)
    wb = t.column("weights").combine_chunks().values.to_numpy(zero_copy_only=False).view(np.uint16).reshape(-1, L, K)
    by_layer = {layer["layer"]: (shape, layer) for shape in ours["shapes"] for layer in shape["layers"]}
    Capacity = peer().Capacity
    for l, (e, k) in enumerate(zip(s["layerExperts"], s["layerTopK"])):
        shape, got = by_layer[s["layers"][l]]
        assert (shape["schema"]["experts"], shape["schema"]["topK"]) == (e, k)
        load = np.bincount(ex[:, l, :k].ravel().astype(np.int64), minlength=e).astype(np.float64)
        assert got["load"] == load.tolist()
        mean = load.mean()
        share = load / load.sum()
        H = -sum(p * math.log(p) for p in share if p > 0) / math.log(e)
        assert math.isclose(got["cv"], load.std() / mean, rel_tol=1e-12)
        assert math.isclose(got["maxVio"], (load.max() - mean) / mean, rel_tol=1e-12)
        assert math.isclose(got["entropy"], H, rel_tol=1e-12)
        assert got["deadExperts"] == int((load == 0).sum())
        cap = Capacity(1, e, k, 1.0, 100)
        cap.add(ex[:, l : l + 1, :k], wb[:, l : l + 1, :k])
        ref = cap.result()["layers"][0]
        assert got["capacity"]["droppedPerExpert"] == ref["droppedPerExpert"]
        for policy in ("probs", "position"):
            for key, v in ref[policy].items():
                assert math.isclose(got["capacity"][policy][key], v, rel_tol=1e-9, abs_tol=1e-12), (l, policy, key)


def test_parquet_export_keeps_the_layout_and_the_shapes(trace: Path, tmp_path: Path) -> None:
    out = tmp_path / "t.parquet"
    run_cli("export", str(trace), "--parquet", str(out))
    t, s = read(trace)
    p = pq.read_table(out)
    header = json.loads(p.schema.metadata[b"moescope"])
    assert header["schema"]["layerExperts"] == [8, 4] and header["schema"]["layerTopK"] == [2, 1]
    assert p.column("experts").to_pylist() == [list(x) for x in t.column("experts").to_pylist()]
    assert np.array_equal(
        np.array(p.column("logits").to_pylist(), dtype=np.float32),
        np.array(t.column("logits").to_pylist(), dtype=np.float32),
    )


def own_loads(trace: Path) -> tuple[dict, list[np.ndarray]]:
    """Each layer's load over its own E and K, counted by numpy from the trace's columns."""
    t, s = read(trace)
    L, K = len(s["layers"]), s["topK"]
    ex = t.column("experts").combine_chunks().values.to_numpy().reshape(-1, L, K)
    return s, [
        np.bincount(ex[:, l, :k].ravel().astype(np.int64), minlength=e).astype(np.float64)
        for l, (e, k) in enumerate(zip(s["layerExperts"], s["layerTopK"]))
    ]


def test_check_judges_each_layer_over_its_own_experts(trace: Path) -> None:
    s, loads = own_loads(trace)
    doc = json.loads(run_cli("check", str(trace), "--max-maxvio", "100", "--max-dead", "100", "--format", "json"))
    rows = {r["layer"]: r for r in doc["rows"] if r["layer"] is not None}
    for l, load in enumerate(loads):
        got = rows[s["layers"][l]]
        mean = load.mean()
        share = load / load.sum()
        H = -sum(p * math.log(p) for p in share if p > 0) / math.log(len(load))
        assert math.isclose(got["maxVio"], (load.max() - mean) / mean, rel_tol=1e-12)
        assert math.isclose(got["cv"], load.std() / mean, rel_tol=1e-12)
        assert math.isclose(got["entropy"], H, rel_tol=1e-12)
        assert math.isclose(got["hotShare"], share.max(), rel_tol=1e-12)
        assert got["dead"] == int((load == 0).sum())
    # One overall row per shape: here each shape is one layer, so its row is that layer's.
    overall = [r for r in doc["rows"] if r["layer"] is None]
    assert [r["shape"] for r in overall] == ["8 experts top-2", "4 experts top-1"]
    for r, l in zip(overall, s["layers"]):
        assert r["maxVio"] == rows[l]["maxVio"] and r["dead"] == rows[l]["dead"]


def test_plan_places_each_layer_over_its_own_experts(trace: Path) -> None:
    s, loads = own_loads(trace)
    doc = json.loads(run_cli("plan", str(trace), "--gpus", "2", "--replicas", "8", "--json"))
    assert [x["shape"] for x in doc["shapes"]] == [{"experts": 8, "topK": 2}, {"experts": 4, "topK": 1}]
    for plan, load in zip(doc["shapes"], loads):
        # before: contiguous, expert e on GPU floor(e * 2 / E)
        half = len(load) // 2
        assert plan["before"]["gpuLoads"] == [[load[:half].sum(), load[half:].sum()]]
        # after: EPLB's slots hold every expert, and the GPUs' loads add up to the layer's assignments
        assert sorted(set(plan["phy2log"][0])) == list(range(len(load)))
        assert math.isclose(sum(plan["after"]["gpuLoads"][0]), load.sum(), rel_tol=1e-12)


@pytest.mark.parametrize("engine", ["stream", "duckdb"])
def test_a_dataset_counts_each_layer_over_its_own_experts(trace: Path, tmp_path: Path, engine: str) -> None:
    s, loads = own_loads(trace)
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "a.arrows").write_bytes(trace.read_bytes())
    run_cli("export", str(trace), "--parquet", str(tmp_path / "ds" / "b.parquet"))
    doc = json.loads(run_cli("stats", str(tmp_path / "ds"), "--engine", engine, "--json"))
    got = {layer["layer"]: layer["load"] for shape in doc["shapes"] for layer in shape["layers"]}
    for l, load in enumerate(loads):
        assert got[s["layers"][l]] == (2 * load).tolist()
    # check and plan over the dataset judge and place each layer over its own experts, as over the one trace
    ds = str(tmp_path / "ds")
    doc = json.loads(run_cli("check", ds, "--engine", engine, "--max-maxvio", "100", "--format", "json"))
    rows = {r["layer"]: r for r in doc["rows"] if r["layer"] is not None}
    for l, load in enumerate(loads):
        mean = load.mean()
        assert math.isclose(rows[s["layers"][l]]["maxVio"], (load.max() - mean) / mean, rel_tol=1e-12)
        assert rows[s["layers"][l]]["dead"] == int((load == 0).sum())
    plan = json.loads(run_cli("plan", ds, "--engine", engine, "--gpus", "2", "--replicas", "8", "--json"))
    assert [x["shape"] for x in plan["shapes"]] == [{"experts": 8, "topK": 2}, {"experts": 4, "topK": 1}]
    for p, load in zip(plan["shapes"], loads):
        half = len(load) // 2
        assert p["before"]["gpuLoads"] == [[2 * load[:half].sum(), 2 * load[half:].sum()]]


@pytest.mark.parametrize("engine", ["stream", "duckdb"])
def test_a_datasets_logits_metrics_per_layer_over_its_own_experts(trace: Path, tmp_path: Path, engine: str) -> None:
    """The logits sums of a mixed-shape dataset (an Arrow trace and its Parquet export: two files of the same
    tokens), each layer over its own E logits and K slots, against numpy from docs/metrics.md's definitions."""
    t, s = read(trace)
    L, E, K = len(s["layers"]), s["experts"], s["topK"]
    ex = t.column("experts").combine_chunks().values.to_numpy().reshape(-1, L, K)
    w = t.column("weights").combine_chunks().values.to_numpy(zero_copy_only=False).reshape(-1, L, K)
    lg = t.column("logits").combine_chunks().values.to_numpy(zero_copy_only=False).reshape(-1, L, E)
    seq = t.column("seq").to_numpy()
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "a.arrows").write_bytes(trace.read_bytes())
    run_cli("export", str(trace), "--parquet", str(tmp_path / "ds" / "b.parquet"))
    doc = json.loads(run_cli("stats", str(tmp_path / "ds"), "--engine", engine, "--json"))
    assert doc["dataset"]["logitSums"] is True
    got = {layer["layer"]: layer for shape in doc["shapes"] for layer in shape["layers"]}
    for l, (e, k) in enumerate(zip(s["layerExperts"], s["layerTopK"])):
        x = lg[:, l, :e].astype(np.float64)  # the layer's own logits: no -Inf padding in any formula
        ids = ex[:, l, :k].astype(np.int64)
        T = x.shape[0]
        m = x.max(axis=1, keepdims=True)
        lse = (m + np.log(np.exp(x - m).sum(axis=1, keepdims=True)))[:, 0]
        p = np.exp(x - lse[:, None])
        P = p.sum(axis=0)
        c = np.bincount(ids.ravel(), minlength=e).astype(np.float64)
        hf = np.bincount(np.argsort(-x, axis=1, kind="stable")[:, :k].ravel(), minlength=e).astype(np.float64)
        first = ids[np.arange(T), np.argmax(w[:, l, :k].astype(np.float64), axis=1)]
        c1 = np.bincount(first, minlength=e).astype(np.float64)
        srt = -np.sort(-p, axis=1)
        want = {
            "zLoss": (lse**2).mean(),
            "tokenEntropy": (-(p * np.log(p)).sum(axis=1) / np.log(e)).mean(),
            "switchAuxLoss": e / (k * T * T) * (P * c).sum(),
            "hfAuxLoss": e * ((hf / T) * (P / T)).sum(),
            "gshardAuxLoss": e * ((P / T) * (c1 / T)).sum(),
            "importanceLoss": P.var() / P.mean() ** 2,
            "routerMargin": (srt[:, k - 1] - srt[:, k]).mean(),
        }
        seq_terms = []
        for q in np.unique(seq):
            r = seq == q
            n = int(r.sum())
            cq = np.bincount(ids[r].ravel(), minlength=e).astype(np.float64)
            seq_terms.append(e / (k * n * n) * (p[r].sum(axis=0) * cq).sum())
        want["seqAuxLoss"] = float(np.mean(seq_terms))
        for key, v in want.items():
            assert math.isclose(got[s["layers"][l]][key], v, rel_tol=1e-9, abs_tol=1e-12), (l, key, got[s["layers"][l]][key], v)
