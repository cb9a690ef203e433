"""The probe on a PyTorch model whose MoE layers differ in E and K: an OLMoE whose layer 0 routes over 8 experts
top-2 and layer 1 over 4 experts top-1 (the model fixtures/models/hf-mixed-shape was exported from, built here
the same way). Streamed to a real `moescope listen --record` on loopback, and written by the probe's own file
sink; both traces are read with pyarrow as docs/trace-format.md describes them (per-layer shapes in the header,
padding NO_EXPERT = 65535 / weight 0 / logit -Inf) and checked per token and per layer against what PyTorch's own
router modules returned (forward hooks of this test): the top-k set, each weight and each logit to float16."""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import torch
from transformers import OlmoeConfig, OlmoeForCausalLM

import moescope_probe
from conftest import CLI, ROOT
from test_trace import node

NO_EXPERT = 65535
SHAPES = [(8, 2), (4, 1)]  # (E, K) of MoE layers 0 and 1
VOCAB = 128
BATCH, SEQ, STEPS = 2, 8, 3


def mixed_olmoe() -> torch.nn.Module:
    torch.manual_seed(0)
    common = dict(vocab_size=VOCAB, hidden_size=32, intermediate_size=32, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, max_position_embeddings=256, norm_topk_prob=False)
    model = OlmoeForCausalLM(OlmoeConfig(num_experts=8, num_experts_per_tok=2, **common))
    small = OlmoeConfig(num_experts=4, num_experts_per_tok=1, **common)
    block = type(model.model.layers[1].mlp)(small)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for prm in block.parameters():  # built outside the model: its parameters skipped the model's init
            prm.copy_(torch.randn(prm.shape, generator=g) * 0.02)
        model.model.layers[1].mlp = block
        for layer in model.model.layers:  # spread the router logits: no near-ties in the top-k
            layer.mlp.gate.weight.copy_(torch.randn(layer.mlp.gate.weight.shape, generator=g) * 0.25)
    return model.eval()


class RouterOutputs:
    """What each layer's router module (OlmoeTopKRouter) returned, per forward pass: logits, weights, ids."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.got: list[list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = [[] for _ in model.model.layers]
        self.handles = [
            layer.mlp.gate.register_forward_hook(lambda m, a, out, l=l: self._take(l, out))
            for l, layer in enumerate(model.model.layers)
        ]

    def _take(self, l: int, out: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> None:
        logits, weights, ids = (x.detach().float().numpy() if x.is_floating_point() else x.numpy() for x in out)
        self.got[l].append((logits, weights, ids))

    def layer(self, l: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return tuple(np.concatenate([p[i] for p in self.got[l]]) for i in range(3))  # type: ignore[return-value]

    def close(self) -> None:
        for h in self.handles:
            h.remove()


def run_steps(model: torch.nn.Module, sink: str) -> tuple[RouterOutputs, moescope_probe.ProbeReport]:
    ref = RouterOutputs(model)
    gen = torch.Generator().manual_seed(2)
    with moescope_probe.attach(model, sink, logits=True) as probe, torch.no_grad():
        for step in range(STEPS):
            probe.step(step)
            model(input_ids=torch.randint(0, VOCAB, (BATCH, SEQ), generator=gen))
    ref.close()
    return ref, probe.close()


def check_trace(t: pa.Table, ref: RouterOutputs) -> None:
    """Every token and layer of the trace against the router modules' own outputs (rows in forward order)."""
    header = json.loads(t.schema.metadata[b"moescope"])
    s = header["schema"]
    assert (s["layerExperts"], s["layerTopK"]) == ([e for e, _ in SHAPES], [k for _, k in SHAPES])
    assert (s["experts"], s["topK"]) == (8, 2)
    assert [(r["experts"], r["topK"]) for r in header["meta"]["routers"]] == SHAPES
    L, E, K = 2, 8, 2
    # listen writes rows in arrival order; one rank's steps arrive in order, and within a pass rows are [B, S].
    order = np.lexsort((t.column("pos").to_numpy(), t.column("seq").to_numpy(), t.column("step").to_numpy()))
    assert t.num_rows == STEPS * BATCH * SEQ
    ex = t.column("experts").combine_chunks().values.to_numpy().reshape(-1, L, K)[order]
    w = t.column("weights").combine_chunks().values.to_numpy(zero_copy_only=False).reshape(-1, L, K)[order]
    lg = t.column("logits").combine_chunks().values.to_numpy(zero_copy_only=False).reshape(-1, L, E)[order]
    for l, (e, k) in enumerate(SHAPES):
        logits, weights, ids = ref.layer(l)
        assert ids.shape == (t.num_rows, k) and logits.shape == (t.num_rows, e)
        # padding past the layer's own shape, as docs/trace-format.md says
        assert (ex[:, l, k:] == NO_EXPERT).all() and (w[:, l, k:] == 0).all()
        assert np.isneginf(lg[:, l, e:]).all()
        # the layer's own slots: PyTorch's top-k set, and each expert's weight to float16
        assert [set(r) for r in ex[:, l, :k].tolist()] == [set(r) for r in ids.tolist()], l
        for row in range(t.num_rows):
            want = dict(zip(ids[row].tolist(), weights[row].astype(np.float16).tolist()))
            got = dict(zip(ex[row, l, :k].tolist(), w[row, l, :k].tolist()))
            assert got == want, (l, row, got, want)
        assert np.array_equal(lg[:, l, :e], logits.astype(np.float16))


def start_listen(record: Path) -> tuple[subprocess.Popen, int]:
    lst = subprocess.Popen(
        [node(), str(CLI), "listen", "--port", "0", "--record", str(record), "--no-ui", "--exit-when-idle", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )
    assert lst.stderr is not None
    for _ in range(20):
        line = lst.stderr.readline()
        m = re.search(r"127\.0\.0\.1:(\d+)", line)
        if m:
            return lst, int(m.group(1))
        if not line:
            break
    lst.kill()
    pytest.fail("moescope listen printed no port")


def test_streams_mixed_shapes_to_the_real_listener(tmp_path: Path) -> None:
    record = tmp_path / "listened.arrows"
    lst, port = start_listen(record)
    try:
        ref, report = run_steps(mixed_olmoe(), f"tcp://127.0.0.1:{port}")
        assert report.tokens == STEPS * BATCH * SEQ and report.steps_dropped == 0 and not report.errors, report
        out, err = lst.communicate(timeout=120)
    finally:
        if lst.poll() is None:
            lst.kill()
    assert lst.returncode == 0, err[-2000:]
    assert "refused" not in err, err
    with pa.ipc.open_stream(str(record)) as r:
        check_trace(r.read_all(), ref)


def test_writes_mixed_shapes_to_a_trace_file(tmp_path: Path) -> None:
    path = tmp_path / "probe.arrows"
    ref, report = run_steps(mixed_olmoe(), str(path))
    assert not report.errors, report
    with pa.ipc.open_stream(str(path)) as r:
        t = r.read_all()
    check_trace(t, ref)
    # moescope reads it as a mixed-shape trace: each layer's load over its own E, counted by numpy
    out = subprocess.run([node(), str(CLI), "stats", str(path), "--json"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    got = {layer["layer"]: layer["load"] for shape in doc["shapes"] for layer in shape["layers"]}
    for l, (e, k) in enumerate(SHAPES):
        ids = ref.layer(l)[2]
        assert got[l] == np.bincount(ids.ravel(), minlength=e).astype(float).tolist()
