"""Finding the routers of a PyTorch Mixture-of-Experts model by structure, without a list of class names.

A router is recognised by what it is for: a module that scores every token against E experts, i.e. it holds
(in its own subtree) a 2-D weight of shape [E, hidden], and E is the number of experts that the model keeps
next to it. "Next to it" is checked two ways:

1. its parent (the MoE block) has another child holding E experts: a ModuleList/ModuleDict of E like modules
   (one module per expert), or a module whose own parameters are stacked per expert (3-D, leading dim E);
2. or the router itself declares E as its expert count (an integer attribute whose name mentions experts, on the
   module or on its ``config``), which is how Megatron-core's TopKRouter and grouped-GEMM experts look.

Of several children of one block that qualify (a shared expert's MLP can have E output rows by accident), the
one with the fewest parameters is the router. What the router then returns is examined at its first call
(``capture.py``): ids, masks, or bare logits whose consumer does the top-k.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterator, Optional

from torch import nn


class NoRouterError(ValueError):
    """The model has no module that looks like a Mixture-of-Experts router."""


@dataclass(frozen=True)
class RouterSite:
    """One router found in the model."""

    name: str  # qualified module name, e.g. "model.layers.3.mlp.gate"
    module: nn.Module  # the router
    block: Optional[nn.Module]  # its parent (the MoE block), where the consumer of bare logits runs
    experts: int  # E
    experts_module: Optional[nn.Module]  # the experts container, when one was found
    layer: int  # model layer id: the first integer in the name (decoder.layers.N…), else the router's index


_LAYER_RE = re.compile(r"(?:^|\.)(\d+)(?:\.|$)")


def _expert_count(m: nn.Module) -> Optional[int]:
    """E when `m` holds E experts (one module each, or parameters stacked per expert), else None."""
    if isinstance(m, (nn.ModuleList, nn.ModuleDict)):
        kids = list(m.children())
        if len(kids) >= 2 and len({type(k) for k in kids}) == 1:
            return len(kids)
        return None
    if isinstance(m, nn.modules.conv._ConvNd):  # a convolution's 3-D weight is [out, in, kernel], not experts
        return None
    stacked = {int(p.shape[0]) for p in m.parameters(recurse=False) if p.dim() == 3}
    if stacked:
        # The largest: LongCat-Flash stacks E routed + Z "zero-computation" experts in one weight, E in another,
        # and routes over all E + Z.
        return max(stacked)
    for child in m.children():  # e.g. Megatron SequentialMLP.local_experts
        if isinstance(child, (nn.ModuleList, nn.ModuleDict)):
            n = _expert_count(child)
            if n is not None:
                return n
    return None


def _score_rows(m: nn.Module) -> set[int]:
    """Row counts of the 2-D weights in `m`'s subtree: the candidate E of a module that scores tokens."""
    return {int(p.shape[0]) for p in m.parameters() if p.dim() == 2 and p.shape[0] >= 2}


def _declared_experts(m: nn.Module) -> set[int]:
    """Integer attributes naming an expert count on `m` or its config (num_experts, num_moe_experts, …)."""
    out: set[int] = set()
    for holder in (m, getattr(m, "config", None)):
        if holder is None:
            continue
        for key, val in vars(holder).items():
            if isinstance(val, int) and not isinstance(val, bool) and "expert" in key and "per" not in key and val >= 2:
                out.add(val)
    return out


def _holds_experts(m: nn.Module) -> bool:
    """`m` is (or contains) an experts container: then it is a MoE block or experts, not a router."""
    return any(_expert_count(sub) is not None for sub in m.modules())


def _extra_rows(m: nn.Module, rows: set[int], count: int) -> bool:
    """A scorer with more rows than experts (e.g. an extra shared-expert gate row) that keeps a per-expert vector
    (a score-correction bias of length E): still the router of those E experts."""
    if not any(r > count for r in rows):
        return False
    vecs = [t for t in (*m.parameters(), *m.buffers()) if t.dim() == 1]
    return any(int(t.shape[0]) == count for t in vecs)


def _n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def _layer_id(name: str, fallback: int) -> int:
    found = _LAYER_RE.search(name)
    return int(found.group(1)) if found else fallback


def _named_blocks(model: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    yield "", model
    yield from model.named_modules()


def find_routers(model: nn.Module) -> list[RouterSite]:
    """Every router of `model`, in module order. Raises NoRouterError when there is none."""
    found: list[RouterSite] = []
    taken: set[int] = set()
    seen_blocks: set[int] = set()
    for block_name, block in _named_blocks(model):
        if id(block) in seen_blocks:
            continue
        seen_blocks.add(id(block))
        children = list(block.named_children())
        holders = [(n, c, _expert_count(c)) for n, c in children]
        best: Optional[tuple[int, str, nn.Module, int, Optional[nn.Module]]] = None
        for child_name, child in children:
            if id(child) in taken or isinstance(child, (nn.ModuleList, nn.ModuleDict)) or _holds_experts(child):
                continue
            rows = _score_rows(child)
            if not rows:
                continue
            match: Optional[tuple[int, Optional[nn.Module]]] = None
            for other_name, other, count in holders:
                if other is not child and count is not None and (count in rows or _extra_rows(child, rows, count)):
                    match = (count, other)
                    break
            if match is None:
                declared = rows & _declared_experts(child)
                if len(declared) == 1 and _owns_weight(child, next(iter(declared))):
                    match = (next(iter(declared)), None)
            if match is None:
                continue
            size = _n_params(child)
            if best is None or size < best[0]:
                best = (size, child_name, child, match[0], match[1])
        if best is None:
            continue
        _, child_name, child, experts, holder = best
        name = f"{block_name}.{child_name}" if block_name else child_name
        taken.add(id(child))
        found.append(RouterSite(name, child, block, experts, holder, _layer_id(name, len(found))))
    if not found:
        raise NoRouterError(
            f"moescope-probe: no Mixture-of-Experts router found in {type(model).__name__}: looked for a module "
            "holding an [E, hidden] scoring weight next to E experts (a ModuleList of E experts or per-expert "
            "stacked weights), or one declaring E experts itself (num_experts / num_moe_experts); none matched"
        )
    return found


def _owns_weight(m: nn.Module, rows: int) -> bool:
    """The module's own (non-recursive) weight is the [E, hidden] scorer: a router, not a whole MoE block."""
    w = getattr(m, "weight", None)
    return isinstance(w, nn.Parameter) and w.dim() == 2 and int(w.shape[0]) == rows
