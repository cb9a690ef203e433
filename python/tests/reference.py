"""The reference the probe is checked against: what each MoE layer's experts were handed, read with hooks the
test installs itself (by module name, independent of the probe's structural search)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np
import torch


@dataclass
class LayerRef:
    name: str
    ids: list[np.ndarray] = field(default_factory=list)
    weights: list[Optional[np.ndarray]] = field(default_factory=list)
    ordered: bool = True  # False: the model's selection has no order (a mask); compare sorted ids


def _tensors(x: Any) -> list[torch.Tensor]:
    if isinstance(x, torch.Tensor):
        return [x]
    if isinstance(x, (tuple, list)):
        return [t for t in x if isinstance(t, torch.Tensor)]
    return []


def _select(ts: list[torch.Tensor], E: int) -> Optional[tuple[np.ndarray, Optional[np.ndarray], bool]]:
    for t in ts:
        if not t.is_floating_point() and t.dtype != torch.bool and t.dim() >= 2 and 1 <= t.shape[-1] < E:
            ids = t.reshape(-1, t.shape[-1])
            T, K = ids.shape
            w = next((u for u in ts if u.is_floating_point() and u.shape[-1] == K and u.numel() == T * K), None)
            return ids.cpu().numpy().copy(), (w.reshape(T, K).float().cpu().numpy().copy() if w is not None else None), True
    # Sparse scores [T, E], zero outside the selection (Llama-4): ids = nonzero columns, sorted.
    for t in ts:
        if t.is_floating_point() and t.dim() == 2 and t.shape[-1] == E:
            nz = (t != 0).sum(dim=-1)
            if bool((nz == nz[0]).all()) and 0 < int(nz[0]) < E:
                K = int(nz[0])
                ids = torch.sort((t != 0).to(torch.int8), dim=-1, stable=True)[1][:, -K:]
                return ids.cpu().numpy().copy(), t.gather(1, ids).float().cpu().numpy().copy(), False
    return None


class Reference:
    """Hooks on every module named `*experts` (its inputs) and on its sibling router (its outputs)."""

    def __init__(self, model: torch.nn.Module, experts: int) -> None:
        self.E = experts
        self._model = model
        self.layers: list[LayerRef] = []
        self.handles: list[Any] = []
        self.input_ids: list[np.ndarray] = []
        for name, mod in model.named_modules():
            last = name.rsplit(".", 1)[-1]
            if last != "experts":
                continue
            parent = model.get_submodule(name.rsplit(".", 1)[0])
            router = next((c for n, c in parent.named_children() if n in ("gate", "router")), None)
            ref = LayerRef(name)
            self.layers.append(ref)
            state: dict[str, Any] = {}
            self.handles.append(mod.register_forward_pre_hook(self._experts_hook(ref, state), with_kwargs=True))
            if router is not None:
                self.handles.append(router.register_forward_hook(self._router_hook(ref, state)))
            self.handles.append(parent.register_forward_hook(self._block_hook(ref, state)))
        # JetMoE-style blocks: no `experts` child; the router returns the selection sorted by expert.
        for name, mod in model.named_modules():
            router = getattr(mod, "router", None)
            if router is None or hasattr(mod, "experts") and name.rsplit(".", 1)[-1] != "experts":
                continue
            if any(isinstance(c, torch.nn.Module) and n == "experts" for n, c in mod.named_children()):
                continue
            ref = LayerRef(f"{name}.router")
            self.layers.append(ref)
            self.handles.append(router.register_forward_hook(self._sorted_hook(ref)))
        self.layers.sort(key=lambda r: self._order.get(r.name.rsplit(".", 1)[0], 0))
        self.handles.append(model.register_forward_pre_hook(self._model_hook, with_kwargs=True))

    @property
    def _order(self) -> dict[str, int]:
        return {n: i for i, (n, _) in enumerate(self._model.named_modules())}

    def _model_hook(self, module: Any, args: Any, kwargs: dict[str, Any]) -> None:
        ids = kwargs.get("input_ids", args[0] if args else None)
        if isinstance(ids, torch.Tensor):
            self.input_ids.append(ids.reshape(-1).cpu().numpy().copy())

    def _experts_hook(self, ref: LayerRef, state: dict[str, Any]) -> Any:
        def hook(module: Any, args: Any, kwargs: dict[str, Any]) -> None:
            got = _select([*_tensors(args), *_tensors(list(kwargs.values()))], self.E)
            if got is not None and "experts" not in state:
                state["experts"] = got
        return hook

    def _router_hook(self, ref: LayerRef, state: dict[str, Any]) -> Any:
        def hook(module: Any, args: Any, out: Any) -> None:
            got = _select(_tensors(out), self.E)
            if got is not None:
                state["router"] = got
        return hook

    def _block_hook(self, ref: LayerRef, state: dict[str, Any]) -> Any:
        def hook(module: Any, args: Any, out: Any) -> None:
            got = state.pop("experts", None) or state.pop("router", None)
            state.clear()
            if got is None:
                return
            ids, w, ordered = got
            ref.ids.append(ids)
            ref.weights.append(w)
            ref.ordered = ref.ordered and ordered
        return hook

    def close(self) -> None:
        for h in self.handles:
            h.remove()


    def _sorted_hook(self, ref: LayerRef) -> Any:
        """Decodes (index_sorted_experts, batch_index, batch_gates, expert_size, logits): sorted position p holds
        flat slot i = t·K + k of token t, for the expert whose block of `expert_size` covers p."""
        def hook(module: Any, args: Any, out: Any) -> None:
            sorted_idx, _, gates, sizes, _ = out
            K = int(module.top_k)
            T = sorted_idx.numel() // K
            bounds = np.cumsum(np.asarray(sizes))
            expert_of = np.searchsorted(bounds, np.arange(sorted_idx.numel()), side="right")
            ids = np.empty(T * K, np.int64)
            w = np.empty(T * K, np.float32)
            ids[sorted_idx.cpu().numpy()] = expert_of
            w[sorted_idx.cpu().numpy()] = gates.float().cpu().numpy()
            ref.ids.append(ids.reshape(T, K))
            ref.weights.append(w.reshape(T, K))
        return hook
