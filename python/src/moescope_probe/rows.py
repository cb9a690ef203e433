"""Turning one forward pass's captures into token rows (runs on the background thread).

Every MoE layer of a pass routes the same T tokens. Rows follow the model input's [B, S] order: router inputs of
shape [S, B, H] (Megatron's sequence-first layout) are transposed back. A pass whose KV cache already holds
tokens (generation) continues the previous pass's sequences at the cached length; any other pass starts B new
sequences (seq ids count up over the whole recording). Tokens of a first pass are `is_prompt`; tokens decoded
on a cache are not.

Layers may differ in E and K (docs/trace-format.md § Layers that differ in E or K): the rows keep the largest K and
E per layer, and what lies past a layer's own shape is padding — ids NO_EXPERT with weight 0, logits −Inf.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from .arrow import NO_EXPERT, Rows
from .capture import LayerCapture, PassCapture


class RowBuilder:
    """Keeps the sequence numbering across passes."""

    def __init__(self, layer_experts: list[int], layer_top_k: list[int], logits: bool) -> None:
        self.layers = len(layer_experts)
        self.layer_experts = layer_experts
        self.layer_top_k = layer_top_k
        self.experts = max(layer_experts)
        self.top_k = max(layer_top_k)
        self.logits = logits
        self.next_seq = 0
        self.last_base = 0
        self.last_batch = 0
        self.errors: list[str] = []

    def build(self, p: PassCapture, dropped: int) -> Optional[Rows]:
        by_slot: dict[int, LayerCapture] = {}
        for c in p.layers:
            by_slot.setdefault(c.slot, c)  # a router called twice in one pass (rare): its first call
        if len(by_slot) != self.layers:
            missing = sorted(set(range(self.layers)) - set(by_slot))
            self._error(f"a forward pass without routing from router(s) {missing} was skipped")
            return None
        T = by_slot[0].ids.shape[0]
        if any(c.ids.shape[0] != T for c in by_slot.values()):
            self._error("a forward pass whose MoE layers routed different token counts was skipped")
            return None
        B, S = self._batch_shape(p, T)
        order = self._order(by_slot[0].in_shape, B, S, T)
        L, K, E = self.layers, self.top_k, self.experts
        mixed = len(set(self.layer_experts)) > 1 or len(set(self.layer_top_k)) > 1
        experts = np.full((T, L, K), NO_EXPERT, np.uint16) if mixed else np.empty((T, L, K), np.uint16)
        weights = np.zeros((T, L, K), np.float16) if mixed else np.empty((T, L, K), np.float16)
        logits = np.full((T, L, E), -np.inf, np.float16) if self.logits else None
        for l in range(L):
            c = by_slot[l]
            k, e = self.layer_top_k[l], self.layer_experts[l]
            if c.ids.shape[1] != k:
                self._error(f"router {l} selected {c.ids.shape[1]} experts per token, expected {k}; pass skipped")
                return None
            ids = c.ids.numpy()
            experts[:, l, :k] = ids[order] if order is not None else ids
            if c.weights is None:
                weights[:, l, :k] = 1.0 / k
            else:
                w = c.weights.float().numpy()
                weights[:, l, :k] = w[order] if order is not None else w
            if logits is not None:
                if c.logits is not None and c.logits.shape == (T, e):
                    lg = c.logits.float().numpy()
                    logits[:, l, :e] = lg[order] if order is not None else lg
                else:
                    logits[:, l, :e] = np.nan  # a router that returns no logits: unknown, not padding
        continuing = p.past is not None and p.past > 0 and B == self.last_batch
        base = self.last_base if continuing else self.next_seq
        if not continuing:
            self.next_seq += B
        self.last_base, self.last_batch = base, B
        first = p.past if continuing and p.past is not None else 0
        seq = np.repeat(np.arange(base, base + B, dtype=np.uint32), S)
        if p.positions is not None and p.positions.numel() == T:
            pos = p.positions.reshape(-1).numpy().astype(np.uint32)
        elif p.positions is not None and p.positions.numel() == S:
            pos = np.tile(p.positions.reshape(-1).numpy().astype(np.uint32), B)
        else:
            pos = np.tile(np.arange(first, first + S, dtype=np.uint32), B)
        if p.token_ids is not None and p.token_ids.numel() == T:
            token_id = p.token_ids.reshape(-1).numpy().astype(np.int32)
        else:
            token_id = np.full(T, -1, np.int32)
        return Rows(
            seq=seq,
            pos=pos,
            token_id=token_id,
            is_prompt=np.full(T, not continuing, np.bool_),
            t_ns=np.full(T, p.t_ns, np.int64),
            experts=experts.reshape(T, L * K),
            weights=weights.reshape(T, L * K),
            logits=logits.reshape(T, L * E) if logits is not None else None,
            step=p.step,
            dropped=dropped,
        )

    @staticmethod
    def _batch_shape(p: PassCapture, T: int) -> tuple[int, int]:
        if p.token_ids is not None and p.token_ids.dim() == 2 and p.token_ids.numel() == T:
            return int(p.token_ids.shape[0]), int(p.token_ids.shape[1])
        return 1, T

    @staticmethod
    def _order(in_shape: tuple[int, ...], B: int, S: int, T: int) -> Optional[np.ndarray]:
        """Row permutation from the router's row order to [B, S] order, or None when they agree."""
        if len(in_shape) == 3 and in_shape[0] == S and in_shape[1] == B and B != S and B > 1:
            return np.arange(T).reshape(S, B).T.reshape(-1)
        return None

    def _error(self, msg: str) -> None:
        if len(self.errors) < 20:
            self.errors.append(msg)
