"""Reading a router's selection from what it returns, on the forward path.

At its first call a router is classified by its output (a tuple is searched for tensors of these shapes, with T
tokens, E experts, K < E):

- ``ids``: an integer [T, K] tensor (the selection); weights = a float [T, K] tensor of the same output, else a
  float [T, E] tensor that is zero outside the selection (gathered), else 1/K; logits = a float [T, E] tensor.
  (Mixtral, Qwen*-MoE, OLMoE, DeepSeek-V2/V3, GPT-OSS, GraniteMoE, … in transformers 5.)
- ``mask``: a bool/0-1 [T, E] tensor with K selected per row (Megatron-core TopKRouter's routing_map, Switch's
  one-hot); ids = its nonzero columns (ascending id), weights = a float [T, E] tensor gathered there, or a float
  [T] / [T, 1] tensor for top-1.
- ``spy``: neither (bare logits: DBRX, Jamba; or flattened, sorted forms: JetMoE). The top-k is observed where
  it happens, with a TorchFunctionMode: inside the router's own forward (Llama-4, JetMoE) or, when the router
  returns only logits, in its parent block from the router's return until the experts start (DBRX, Jamba). The
  weights are the last [T, K] float tensor computed from the top-k values in that window (softmax,
  renormalisation, scaling …), i.e. what the model passed on; a [T, E] output zero outside the ids wins.

The only work done on the forward path is a copy of the small [T, K] ids and weights (and [T, E] logits when
asked) to the CPU: non-blocking into pinned memory on a GPU, with an event the background thread waits on.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import torch
from torch.overrides import TorchFunctionMode

from .find import RouterSite

_TOPK = {torch.topk, torch.Tensor.topk}


@dataclass
class LayerCapture:
    """One router call's selection, on the CPU (or on its way there: wait for `event`)."""

    slot: int  # index of the router in the trace's layer list
    ids: torch.Tensor  # [T, K] integer
    weights: Optional[torch.Tensor]  # [T, K] float, None = uniform 1/K
    logits: Optional[torch.Tensor]  # [T, E] float
    in_shape: tuple[int, ...]  # the router input's shape (to map rows to tokens)
    pending: bool = False  # a non-blocking device→host copy: wait for the pass's event before reading


def _tensors(out: Any) -> list[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, (tuple, list)):
        return [t for t in out if isinstance(t, torch.Tensor)]
    if isinstance(out, dict):
        return [t for t in out.values() if isinstance(t, torch.Tensor)]
    return []


def _rows(t: torch.Tensor, width: int) -> Optional[torch.Tensor]:
    """`t` seen as [rows, width] when its last dim is `width`, else None."""
    if t.dim() < 1 or t.shape[-1] != width or t.numel() == 0:
        return None
    return t.reshape(-1, width)


def _is_int(t: torch.Tensor) -> bool:
    return not t.is_floating_point() and not t.is_complex() and t.dtype != torch.bool


@dataclass
class _Plan:
    """How to read one router's output, decided at its first call (positions in the output tuple)."""

    mode: str  # "ids" | "mask" | "spy-inner" | "spy-outer"
    ids_at: int = -1
    weights_at: int = -1
    weights_sparse: bool = False  # weights_at is a [T, E] tensor to gather at the ids
    logits_at: int = -1
    spy_sparse: Optional[int] = None  # spy modes: index of a [T, E] output zero outside the ids (decided once)


class _Spy(TorchFunctionMode):
    """Watches torch calls for a top-k over E columns and the float [T, K] tensors computed from its values."""

    def __init__(self, experts: int) -> None:
        super().__init__()
        self.experts = experts
        self.ids: Optional[torch.Tensor] = None
        self.values: Optional[torch.Tensor] = None
        self.topk_input: Optional[torch.Tensor] = None
        self.derived: Optional[torch.Tensor] = None
        self._tracked: set[int] = set()
        self._keep: list[torch.Tensor] = []

    def __torch_function__(self, func: Callable[..., Any], types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        result = func(*args, **kwargs)
        if func in _TOPK and self.ids is None:
            src = args[0] if args else kwargs.get("input")
            if isinstance(src, torch.Tensor) and src.shape[-1] == self.experts and isinstance(result, tuple):
                self.values, self.ids = result[0], result[1]
                self.topk_input = src
                self._track(result[0])
        elif self.values is not None and isinstance(result, torch.Tensor) and result.is_floating_point():
            if result.shape == self.values.shape and any(
                isinstance(a, torch.Tensor) and id(a) in self._tracked for a in (*args, *kwargs.values())
            ):
                self._track(result)
                self.derived = result
        return result

    def _track(self, t: torch.Tensor) -> None:
        self._tracked.add(id(t))
        self._keep.append(t)  # keeps ids unique while the window is open


class RouterHooks:
    """Forward hooks on one router (and its block) that hand each call's selection to `emit`."""

    def __init__(self, site: RouterSite, slot: int, want_logits: bool, emit: Callable[[LayerCapture], None]) -> None:
        self.site = site
        self.slot = slot
        self.want_logits = want_logits
        self.emit = emit
        self.active: Callable[[], bool] = lambda: True
        self.plan: Optional[_Plan] = None
        self.top_k: Optional[int] = None
        self.kind = "unknown"
        self._spy: Optional[_Spy] = None
        self._spy_open = False
        self._in_shape: tuple[int, ...] = ()
        self._handles: list[Any] = []
        self._pre_handle: Optional[Any] = None

    # -- installation -------------------------------------------------------------------------------------------

    def install(self) -> None:
        """Hooks for the first call; once the router is classified only those its reading needs stay (for a router
        that returns ids: one forward hook, nothing else on the forward path)."""
        m = self.site.module
        self._pre_handle = m.register_forward_pre_hook(self._pre)
        self._handles.append(m.register_forward_hook(self._post, always_call=True))

    def _settle(self) -> None:
        assert self.plan is not None
        if self.plan.mode in ("ids", "mask") and self._pre_handle is not None:
            self._pre_handle.remove()
            self._pre_handle = None
        if self.plan.mode == "spy-outer":
            if self.site.block is not None:
                self._handles.append(self.site.block.register_forward_hook(self._block_post, always_call=True))
            if self.site.experts_module is not None:
                self._handles.append(self.site.experts_module.register_forward_pre_hook(self._experts_pre))

    def remove(self) -> None:
        self._close_spy()
        if self._pre_handle is not None:
            self._pre_handle.remove()
            self._pre_handle = None
        for h in self._handles:
            h.remove()
        self._handles.clear()

    # -- hooks ----------------------------------------------------------------------------------------------------

    def _pre(self, module: torch.nn.Module, args: tuple[Any, ...]) -> None:
        if self.active() and (self.plan is None or self.plan.mode == "spy-inner"):
            self._open_spy()

    def _post(self, module: torch.nn.Module, args: tuple[Any, ...], out: Any) -> None:
        spy = self._spy if self._spy_open else None
        self._close_spy()
        if not self.active() or out is None:
            return
        self._in_shape = tuple(args[0].shape) if args and isinstance(args[0], torch.Tensor) else ()
        ts = _tensors(out)
        if self.plan is None:
            self.plan = self._classify(ts, spy)
            self._settle()
        plan = self.plan
        if plan.mode == "ids":
            ids = ts[plan.ids_at].reshape(-1, ts[plan.ids_at].shape[-1])
            w = ts[plan.weights_at] if plan.weights_at >= 0 else None
            self._emit(ids, w, plan.weights_sparse, self._logits(ts))
        elif plan.mode == "mask":
            self._emit_mask(ts)
        elif plan.mode == "spy-inner" and spy is not None and spy.ids is not None:
            self._emit_spy(spy, ts)
        elif plan.mode == "spy-outer":
            self._open_spy()
            self._outer_ts = ts

    def _experts_pre(self, module: torch.nn.Module, args: tuple[Any, ...]) -> None:
        # The selection is made once the experts start: stop watching every torch call of the block.
        if self.plan is not None and self.plan.mode == "spy-outer" and self._spy_open:
            self._finish_outer()

    def _block_post(self, module: torch.nn.Module, args: tuple[Any, ...], out: Any) -> None:
        if self.plan is not None and self.plan.mode == "spy-outer" and self._spy_open:
            self._finish_outer()

    # -- classification ---------------------------------------------------------------------------------------------

    def _classify(self, ts: list[torch.Tensor], spy: Optional[_Spy]) -> _Plan:
        E = self.site.experts
        T: Optional[int] = None
        for i, t in enumerate(ts):
            if _is_int(t) and t.dim() >= 1 and 1 <= t.shape[-1] < E:
                ids = t.reshape(-1, t.shape[-1])
                T, K = ids.shape
                plan = _Plan("ids", ids_at=i)
                plan.weights_at = next(
                    (j for j, w in enumerate(ts) if w.is_floating_point() and w.shape[-1] == K and w.numel() == T * K), -1
                )
                if plan.weights_at < 0:
                    plan.weights_at, plan.weights_sparse = self._sparse_weights(ts, ids), True
                plan.logits_at = self._logits_at(ts, T, exclude=plan.weights_at if plan.weights_sparse else -1)
                self.top_k, self.kind = K, "module-topk"
                return plan
        for i, t in enumerate(ts):
            if not t.is_floating_point() and t.shape[-1] == E and t.dim() >= 1:
                m = t.reshape(-1, E)
                per_row = (m != 0).sum(dim=-1)
                if per_row.numel() and bool((per_row == per_row[0]).all()) and int(per_row[0]) >= 1:
                    K = int(per_row[0])
                    T = m.shape[0]
                    plan = _Plan("mask", ids_at=i)
                    plan.weights_at = next(
                        (j for j, w in enumerate(ts) if w.is_floating_point() and w.shape[-1] == E and w.numel() == T * E),
                        -1,
                    )
                    plan.weights_sparse = plan.weights_at >= 0
                    if plan.weights_at < 0 and K == 1:
                        plan.weights_at = next((j for j, w in enumerate(ts) if w.is_floating_point() and w.numel() == T), -1)
                    plan.logits_at = self._logits_at(ts, T, exclude=plan.weights_at)
                    self.top_k, self.kind = K, "module-mask"
                    return plan
        if spy is not None and spy.ids is not None:
            self.top_k, self.kind = int(spy.ids.shape[-1]), "topk-in-router"
            return _Plan("spy-inner")
        if self.site.block is None:
            raise RuntimeError(
                f"moescope-probe: router {self.site.name} returned no expert ids, no routing mask and made no top-k "
                "over its experts, and has no parent module to watch"
            )
        self.kind = "topk-in-block"
        return _Plan("spy-outer", logits_at=self._logits_at(ts, None, exclude=-1))

    def _sparse_weights(self, ts: list[torch.Tensor], ids: torch.Tensor) -> int:
        """Index of a float [T, E] output that is zero outside the selected ids (Llama-4's scores), else -1."""
        E = self.site.experts
        T, K = ids.shape
        for j, w in enumerate(ts):
            if not w.is_floating_point() or w.numel() != T * E or w.shape[-1] != E:
                continue
            m = w.reshape(T, E)
            if int((m != 0).sum()) <= T * K and bool((m.gather(1, ids.long()) != 0).all()):
                return j
        return -1

    def _logits_at(self, ts: list[torch.Tensor], T: Optional[int], exclude: int) -> int:
        E = self.site.experts
        for j, t in enumerate(ts):
            if j != exclude and t.is_floating_point() and t.shape[-1] == E and (T is None or t.numel() == T * E):
                return j
        return -1

    # -- emitting -----------------------------------------------------------------------------------------------

    def _logits(self, ts: list[torch.Tensor]) -> Optional[torch.Tensor]:
        if not self.want_logits or self.plan is None or self.plan.logits_at < 0:
            return None
        return ts[self.plan.logits_at].reshape(-1, self.site.experts)

    def _emit(self, ids: torch.Tensor, w: Optional[torch.Tensor], sparse: bool, logits: Optional[torch.Tensor]) -> None:
        if w is not None:
            w = w.reshape(-1, self.site.experts).gather(1, ids.long()) if sparse else w.reshape(ids.shape)
        self.emit(_to_cpu(self.slot, ids, w, logits, self._in_shape))

    def _emit_mask(self, ts: list[torch.Tensor]) -> None:
        plan = self.plan
        assert plan is not None and self.top_k is not None
        mask = ts[plan.ids_at].reshape(-1, self.site.experts)
        # Ascending expert ids of the K selected columns: a stable sort of the mask puts them last.
        ids = torch.sort((mask != 0).to(torch.int8), dim=-1, stable=True)[1][:, -self.top_k :]
        w: Optional[torch.Tensor] = None
        if plan.weights_at >= 0:
            src = ts[plan.weights_at]
            w = src.reshape(-1, self.site.experts).gather(1, ids) if plan.weights_sparse else src.reshape(-1, 1)
        self.emit(_to_cpu(self.slot, ids, w, self._logits(ts), self._in_shape))

    def _emit_spy(self, spy: _Spy, ts: list[torch.Tensor]) -> None:
        ids = spy.ids
        assert ids is not None and spy.values is not None
        ids = ids.reshape(-1, ids.shape[-1])
        plan = self.plan
        assert plan is not None
        if plan.spy_sparse is None:  # decided at the first call: the check reads values (a device sync)
            plan.spy_sparse = self._sparse_weights(ts, ids) if ts else -1
        sparse = plan.spy_sparse
        if sparse >= 0:
            w: Optional[torch.Tensor] = ts[sparse].reshape(-1, self.site.experts).gather(1, ids.long())
        else:
            w = (spy.derived if spy.derived is not None else spy.values).reshape(ids.shape)
        logits: Optional[torch.Tensor] = None
        if self.want_logits:
            j = self._logits_at(ts, ids.shape[0], exclude=sparse) if ts else -1
            src = ts[j] if j >= 0 else spy.topk_input
            logits = src.reshape(-1, self.site.experts) if src is not None else None
        self.emit(_to_cpu(self.slot, ids, w, logits, self._in_shape))

    def _finish_outer(self) -> None:
        spy = self._spy
        self._close_spy()
        ts: list[torch.Tensor] = getattr(self, "_outer_ts", [])
        self._outer_ts = []
        if spy is None or spy.ids is None:
            return
        if self.top_k is None:
            self.top_k = int(spy.ids.shape[-1])
        self._emit_spy(spy, ts)

    # -- spy window -------------------------------------------------------------------------------------------

    def _open_spy(self) -> None:
        if self._spy_open:
            return
        self._spy = _Spy(self.site.experts)
        self._spy.__enter__()
        self._spy_open = True

    def _close_spy(self) -> None:
        if self._spy_open and self._spy is not None:
            self._spy_open = False
            self._spy.__exit__(None, None, None)


_pinned_ok: Optional[bool] = None


def _copy(t: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """A CPU copy of `t`; (copy, async) — async when it is a non-blocking device-to-host copy still in flight."""
    t = t.detach()
    if t.device.type == "cpu":
        return t.clone(), False
    global _pinned_ok
    if _pinned_ok is None:
        _pinned_ok = torch.cuda.is_available()
    if t.device.type == "cuda" and _pinned_ok:
        dst = torch.empty(t.shape, dtype=t.dtype, pin_memory=True)
        dst.copy_(t, non_blocking=True)
        return dst, True
    return t.to("cpu"), False


def _to_cpu(
    slot: int, ids: torch.Tensor, w: Optional[torch.Tensor], logits: Optional[torch.Tensor], in_shape: tuple[int, ...]
) -> LayerCapture:
    ids_c, a1 = _copy(ids)
    w_c, a2 = _copy(w) if w is not None else (None, False)
    l_c, a3 = _copy(logits) if logits is not None else (None, False)
    # In flight: one CUDA event recorded at the end of the pass covers every copy of it (same stream).
    return LayerCapture(slot, ids_c, w_c, l_c, in_shape, a1 or a2 or a3)


@dataclass
class PassCapture:
    """Everything recorded during one forward pass of the attached model."""

    t_ns: int
    step: Optional[int]
    token_ids: Optional[torch.Tensor]  # [B, S] on the CPU (or in flight), None when the input had none
    past: Optional[int]  # tokens already in the KV cache (generation), None when unknown
    positions: Optional[torch.Tensor]  # position_ids given by the caller, when any
    layers: list[LayerCapture] = field(default_factory=list)
    event: Optional[Any] = None
