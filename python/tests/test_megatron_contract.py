"""The routing-mask path (Megatron-core's TopKRouter contract) and sequence-first activations.

megatron-core is not on this machine's pip index, so this is NOT Megatron: a small model written here to
Megatron's documented router contract — the router holds weight [E, hidden] and returns (probs, routing_map), both
[tokens, E], probs zero outside the top-k; the MoE layer sees [S, B, hidden] activations — and checked against
that router's own outputs."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

import moescope_probe
from test_trace import read

E, K, H = 8, 3, 16


class MaskRouter(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(E, H))
        self.topk = K

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = x.reshape(-1, H) @ self.weight.t()
        vals, idx = torch.topk(logits, K, dim=-1)
        probs = torch.zeros_like(logits).scatter(1, idx, torch.softmax(vals, dim=-1))
        routing_map = torch.zeros_like(logits, dtype=torch.bool).scatter(1, idx, True)
        return probs, routing_map


class MoELayer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.router = MaskRouter()
        self.experts = nn.ModuleList(nn.Linear(H, H) for _ in range(E))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [S, B, H]
        probs, routing_map = self.router(x)
        flat = x.reshape(-1, H)
        out = torch.zeros_like(flat)
        for e, expert in enumerate(self.experts):
            rows = routing_map[:, e].nonzero().squeeze(-1)
            out[rows] += probs[rows, e, None] * expert(flat[rows])
        return out.reshape(x.shape)


class SeqFirstModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embedding = nn.Embedding(100, H)
        self.layers = nn.ModuleList(MoELayer() for _ in range(2))

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        h = self.embedding(input_ids).transpose(0, 1)  # [S, B, H], as Megatron's decoder
        for layer in self.layers:
            h = h + layer(h)
        return h


def test_mask_router_with_sequence_first_activations(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = SeqFirstModel().eval()
    own: list[list[Any]] = [[], []]
    for l, layer in enumerate(model.layers):
        layer.router.register_forward_hook(lambda m, a, o, l=l: own[l].append((o[0].clone(), o[1].clone())))
    ids = torch.randint(0, 100, (3, 7))
    with moescope_probe.attach(model, str(tmp_path / "m.arrows")) as probe, torch.no_grad():
        model(input_ids=ids)
    assert [h.kind for h in probe.hooks] == ["module-mask", "module-mask"]
    t = read(tmp_path / "m.arrows")
    assert t.column("token_id").to_pylist() == ids.reshape(-1).tolist()  # rows back in [B, S] order
    got = t.column("experts").combine_chunks().values.to_numpy().reshape(3, 7, 2, K)
    w = t.column("weights").combine_chunks().values.to_numpy(zero_copy_only=False).reshape(3, 7, 2, K)
    for l in range(2):
        probs, rmap = own[l][0]  # rows in [S, B] order
        for b in range(3):
            for s in range(7):
                r = s * 3 + b
                want = np.flatnonzero(rmap[r].numpy())
                assert got[b, s, l].tolist() == want.tolist()  # ascending ids, as the map holds them
                assert np.array_equal(w[b, s, l], probs[r, want].numpy().astype(np.float16))

