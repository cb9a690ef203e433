"""Each kind of zero-computation expert src/engine/zero-experts.ts tells apart, on a real tiny export: the
LongcatFlashForCausalLM of fixtures/models/hf-longcat-flash (6 real experts + 2 zero-computation experts, top-2,
same seeds), its experts module swapped for a variant of tools/fixtures/export_longcat.py and exported here into a
temporary folder:

- identity: the zero experts' weight scales the token's hidden state (transformers' LongCat) -> "identity";
- zero: they output zero (MoE++'s zero experts), their weight multiplies nothing -> "zero";
- gated: their weight passes a tanh before it scales the hidden state -> "unknown" (neither, and not named);
- masked: their weights are picked by a 0/1 mask over every column instead of a slice -> "unknown".

Checked against the variant's own PyTorch definition (which ids compute what), PyTorch's router module run on the
same tokens (top-k sets and weights recorded by `run`), and numpy over the recorded trace (the zero share and the
real experts' balance in `stats --json`)."""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pyarrow.ipc as ipc
import pytest
import torch

from conftest import ROOT, run_cli

sys.path.insert(0, str(ROOT / "tools" / "fixtures"))
import export_longcat as X  # noqa: E402 — the fixture's generator: its model, seeds and experts variants

FIXTURE = ROOT / "fixtures" / "models" / "hf-longcat-flash"
REAL, ZERO = X.E, X.Z  # 6 real experts (ids 0-5), 2 zero-computation experts (ids 6, 7)
TEXT = {
    "identity": "their weight scales the token's own hidden state",
    "zero": "their weight multiplies nothing",
    "unknown": "what they compute is unclear from the graph",
}


@pytest.fixture(scope="module", params=sorted(X.VARIANTS))
def export(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path, torch.nn.Module]:
    name = request.param
    d = tmp_path_factory.mktemp(f"longcat-{name}")
    model = X.export_variant(name, str(d / "model.onnx"))
    shutil.copy(FIXTURE / "tokenizer.json", d / "tokenizer.json")
    return name, d / "model.onnx", model


def test_the_variants_compute_what_their_kind_says(export: tuple[str, Path, torch.nn.Module]) -> None:
    """The reference for each kind, from PyTorch: how a layer's output moves when only a zero expert's weight does."""
    name, _, model = export
    experts = model.model.layers[0].mlp.experts
    forward = X.VARIANTS[name][0]
    h = torch.randn(5, model.config.hidden_size, generator=torch.Generator().manual_seed(3))
    ids = torch.tensor([[0, REAL]] * 5)  # one real expert and zero expert 6
    with torch.no_grad():
        a = forward(experts, h, ids, torch.tensor([[0.5, 0.2]] * 5))
        b = forward(experts, h, ids, torch.tensor([[0.5, 0.6]] * 5))
    delta = b - a
    if name == "zero":
        assert torch.equal(delta, torch.zeros_like(delta))
    elif name in ("identity", "masked"):
        assert torch.allclose(delta, 0.4 * h, atol=1e-6)
    else:  # gated: tanh(0.6) - tanh(0.2) times the hidden state, not a multiple the weight itself gives
        assert torch.allclose(delta, (np.tanh(0.6) - np.tanh(0.2)) * h, atol=1e-6)


def test_inspect_names_the_kind(export: tuple[str, Path, torch.nn.Module]) -> None:
    name, path, _ = export
    kind = X.VARIANTS[name][1]
    doc = json.loads(run_cli("inspect", str(path), "--json"))
    want = {"ids": list(range(REAL, REAL + ZERO)), "kind": kind}
    assert [r["zeroExperts"] for r in doc["routers"]] == [want, want]
    assert all(r["experts"] == REAL + ZERO for r in doc["routers"])
    text = run_cli("inspect", str(path))
    assert f"2 zero-computation experts ({kind}): 6–7 of 8 — {TEXT[kind]}; stats balance over the other 6." in text


def test_run_records_the_routers_choice_and_stats_measure_the_zero_share(
    export: tuple[str, Path, torch.nn.Module], tmp_path: Path
) -> None:
    name, path, model = export
    trace = tmp_path / "t.arrows"
    run_cli("run", str(path), "--no-ui", "--max-tokens", "4", "--record", str(trace))
    t = ipc.open_stream(trace).read_all()
    header = json.loads(t.schema.metadata[b"moescope"])
    kind = X.VARIANTS[name][1]
    assert [r["zeroExperts"] for r in header["meta"]["routers"]] == [{"ids": [6, 7], "kind": kind}] * 2
    L, K, E = 2, X.K, REAL + ZERO
    seqs = t.column("seq").to_numpy()
    experts = t.column("experts").combine_chunks().values.to_numpy().reshape(-1, L, K)
    weights = t.column("weights").combine_chunks().values.to_numpy(zero_copy_only=False).reshape(-1, L, K)
    ids = t.column("token_id").to_numpy()
    hooked: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
    handles = [
        layer.mlp.router.register_forward_hook(lambda m, a, out, i=i: hooked.__setitem__(i, out))
        for i, layer in enumerate(model.model.layers)
    ]
    try:
        with X.swapped_experts(model, X.VARIANTS[name][0]):  # the exported arithmetic: layer 1's input depends on it
            for s in np.unique(seqs):
                rows = np.flatnonzero(seqs == s)
                with torch.no_grad():
                    model(input_ids=torch.from_numpy(ids[rows][None].astype(np.int64)), use_cache=False)
                for l in range(L):
                    w, ix = hooked[l]
                    for r, tw, ti in zip(rows, w.numpy(), ix.numpy()):
                        want = dict(zip(ti.tolist(), tw.astype(np.float16).tolist()))
                        got = dict(zip(experts[r, l].tolist(), weights[r, l].tolist()))
                        assert set(got) == set(want), (name, s, l, r)
                        for e, x in got.items():
                            assert abs(x - want[e]) <= 2e-3 * max(1.0, abs(want[e])), (name, e, x, want[e])
    finally:
        for h in handles:
            h.remove()
    zero = np.arange(REAL, E)
    assert np.isin(experts, zero).any(), "some slots route to the zero experts"
    doc = json.loads(run_cli("stats", str(trace), "--json"))
    for l in range(L):
        load = np.bincount(experts[:, l, :].ravel(), minlength=E).astype(np.float64)
        real = load[:REAL]
        got = doc["layers"][l]
        assert got["load"] == load.tolist()
        assert got["zeroShare"] == pytest.approx(np.isin(experts[:, l, :], zero).mean(), rel=1e-12)
        assert got["cv"] == pytest.approx(real.std() / real.mean(), rel=1e-9)
        assert got["deadExperts"] == int((real == 0).sum())
