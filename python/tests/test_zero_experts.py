"""Zero-computation experts (LongCat-Flash). fixtures/models/hf-longcat-flash is a random-weight
LongcatFlashForCausalLM (6 real experts + 2 identity experts, top-2) exported by tools/fixtures/export_longcat.py.

Checked against independent references: transformers' LongCat modeling code (ids >= n_routed_experts are
nn.Identity) for what `inspect` marks; PyTorch's own router module, run here on the same token ids, for the top-k
and weights `run` records; numpy over the recorded trace (read with pyarrow as docs/trace-format.md describes) for
the zero-expert share and the real-expert CV / MaxVio / entropy / dead count of `stats --json`."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.ipc as ipc
import pytest

from conftest import ROOT, run_cli

FIXTURE = ROOT / "fixtures" / "models" / "hf-longcat-flash"
MODEL = FIXTURE / "model.onnx"


@pytest.fixture(scope="module")
def trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("longcat") / "t.arrows"
    run_cli("run", str(MODEL), "--no-ui", "--max-tokens", "6", "--record", str(path))
    return path


def torch_model():
    """The fixture's PyTorch twin: the same config and weights export_longcat.py drew (same seeds)."""
    import sys

    sys.path.insert(0, str(ROOT / "tools" / "fixtures"))
    import export_longcat  # noqa: PLC0415 — the fixture's own generator, so the weights are the exported ones
    from common import seed_all

    seed_all(0)
    return export_longcat.build()


def test_inspect_marks_the_identity_experts_transformers_routes_to() -> None:
    from transformers import LongcatFlashConfig

    meta = json.loads((FIXTURE / "meta.json").read_text())
    cfg = LongcatFlashConfig(n_routed_experts=meta["nRoutedExperts"], zero_expert_num=meta["zeroExpertNum"])
    # transformers' LongcatFlashExperts: an id >= n_routed_experts is nn.Identity (the token's hidden state).
    want = {"ids": list(range(cfg.n_routed_experts, cfg.n_routed_experts + cfg.zero_expert_num)), "kind": "identity"}
    doc = json.loads(run_cli("inspect", str(MODEL), "--json"))
    assert [r["zeroExperts"] for r in doc["routers"]] == [want, want]
    assert all(r["experts"] == cfg.n_routed_experts + cfg.zero_expert_num for r in doc["routers"])
    text = run_cli("inspect", str(MODEL))
    assert "2 zero-computation experts (identity): 6–7 of 8" in text


def test_recorded_routing_equals_pytorchs_router(trace: Path) -> None:
    import torch

    t = ipc.open_stream(trace).read_all()
    header = json.loads(t.schema.metadata[b"moescope"])
    assert [r["zeroExperts"] for r in header["meta"]["routers"]] == [{"ids": [6, 7], "kind": "identity"}] * 2
    model = torch_model()
    hooked: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
    for i, layer in enumerate(model.model.layers):
        layer.mlp.router.register_forward_hook(lambda m, a, out, i=i: hooked.__setitem__(i, out))
    L, K = 2, 2
    seqs = t.column("seq").to_numpy()
    experts = np.array(t.column("experts").to_pylist()).reshape(-1, L, K)
    weights = np.array(t.column("weights").to_pylist(), dtype=np.float64).reshape(-1, L, K)
    ids = np.array(t.column("token_id").to_pylist())
    checked = zero_slots = 0
    for s in np.unique(seqs):
        rows = np.flatnonzero(seqs == s)
        with torch.no_grad():
            model(input_ids=torch.from_numpy(ids[rows][None].astype(np.int64)), use_cache=False)
        for l in range(L):
            w, ix = hooked[l]
            for r, (tw, ti) in zip(rows, zip(w.numpy(), ix.numpy())):
                order = {int(e): float(x) for e, x in zip(ti, tw)}
                assert set(experts[r, l].tolist()) == set(order), (s, l, r)
                for e, x in zip(experts[r, l], weights[r, l]):
                    assert abs(x - order[int(e)]) <= 2e-3 * max(1.0, abs(order[int(e)])), (e, x, order)  # float16
                checked += 1
                zero_slots += int(np.sum(experts[r, l] >= 6))
    assert checked == len(seqs) * L
    assert zero_slots > 0, "the trace routes some slots to the identity experts"


def test_stats_balance_the_real_experts_and_measure_the_zero_share(trace: Path) -> None:
    t = ipc.open_stream(trace).read_all()
    L, K, E = 2, 2, 8
    experts = np.array(t.column("experts").to_pylist()).reshape(-1, L, K)
    doc = json.loads(run_cli("stats", str(trace), "--json", "--window", "32"))
    zero = np.array([6, 7])
    for l in range(L):
        load = np.bincount(experts[:, l, :].ravel(), minlength=E).astype(np.float64)
        real = np.delete(load, zero)
        got = doc["layers"][l]
        assert got["load"] == load.tolist()  # every expert still listed
        assert got["zeroShare"] == pytest.approx(np.isin(experts[:, l, :], zero).mean(), rel=1e-12)
        mean = real.mean()
        assert got["cv"] == pytest.approx(real.std() / mean, rel=1e-9)
        assert got["maxVio"] == pytest.approx((real.max() - mean) / mean, rel=1e-9)
        p = real[real > 0] / real.sum()
        assert got["entropy"] == pytest.approx(-(p * np.log(p)).sum() / np.log(len(real)), rel=1e-9)
        assert got["deadExperts"] == int((real == 0).sum())
    assert doc["global"]["zeroShare"] == pytest.approx(np.isin(experts, zero).mean(), rel=1e-12)
    # The collapse rules judge real experts only: no dead/hot warning names a zero expert, and the hot threshold's
    # default is 3 / (real experts).
    assert doc["window"]["rules"]["hotShare"] == pytest.approx(3 / 6)
    assert not [w for w in doc["warnings"] if w["expert"] is not None and w["expert"] in (6, 7)]
