"""`attach()`: hooks every router of a model and records each forward pass to a sink; the handle it returns."""
from __future__ import annotations

import inspect
import os
import sys
import time
from dataclasses import dataclass
from typing import Any, Hashable, Optional

import torch
from torch import nn

from .arrow import RouterInfo, TraceLayout
from .capture import LayerCapture, PassCapture, RouterHooks, _copy
from .find import RouterSite, find_routers
from .sinks import FileSink, ProbeSinkError, Sink, SocketSink, parse_address
from .writer import Writer


@dataclass(frozen=True)
class ProbeReport:
    """What a probe recorded, returned by `close()`."""

    sink: str
    passes: int
    tokens: int
    steps_dropped: int
    errors: tuple[str, ...]


def _dist() -> tuple[Optional[int], Optional[int]]:
    """(rank, world) from torch.distributed when initialised, else (None, None)."""
    d = getattr(torch, "distributed", None)
    if d is not None and d.is_available() and d.is_initialized():
        return int(d.get_rank()), int(d.get_world_size())
    return None, None


def _scoring(site: RouterSite) -> str:
    """sigmoid when the router (or, for bare logits, its block) scores with a sigmoid, else softmax."""
    for holder in (site.module, getattr(site.module, "config", None)):
        for key in ("score_function", "moe_router_score_function", "scoring_func"):
            val = getattr(holder, key, None) if holder is not None else None
            if isinstance(val, str):
                return "sigmoid" if "sigmoid" in val else "softmax"
    for owner in (site.module, site.block):
        if owner is None:
            continue
        try:
            src = inspect.getsource(type(owner))
        except (OSError, TypeError):
            continue
        if "sigmoid" in src:
            return "sigmoid"
    return "softmax"


def _devices(model: nn.Module) -> tuple[str, ...]:
    seen: list[str] = []
    for p in model.parameters():
        d = p.device
        label = str(d)
        if d.type == "cuda":
            label = f"{d} {torch.cuda.get_device_name(d)}"
        if label not in seen:
            seen.append(label)
        if len(seen) >= 8:
            break
    return tuple(seen) or ("cpu",)


def _model_name(model: nn.Module) -> str:
    cfg = getattr(model, "config", None)
    name = getattr(cfg, "_name_or_path", None) if cfg is not None else None
    return name if isinstance(name, str) and name else type(model).__name__


def _rank_path(path: str, rank: Optional[int], world: Optional[int]) -> str:
    """Each rank writes its own file: `{rank}` in the path, else `.rankN` before the extension."""
    if rank is None:
        return path.replace("{rank}", "0")
    if "{rank}" in path:
        return path.replace("{rank}", str(rank))
    if world is not None and world > 1:
        root, ext = os.path.splitext(path)
        return f"{root}.rank{rank}{ext}"
    return path


class Probe:
    """Handle returned by `attach()`: a context manager; `step(n)` numbers the steps; `close()` finishes."""

    def __init__(
        self,
        model: nn.Module,
        sink: str,
        *,
        logits: bool = False,
        tag: Optional[str] = None,
        token: Optional[str] = None,
        max_queue: int = 64,
    ) -> None:
        self.model = model
        self.logits = logits
        self.sites = find_routers(model)
        self.rank, self.world = _dist()
        self._step: Optional[int] = None
        self._step_given_before_start = False
        self._passes = 0
        self._active = False
        self._pass: Optional[PassCapture] = None
        self._pending = False
        self._closed = False
        self._report: Optional[ProbeReport] = None
        self._scoring = [_scoring(s) for s in self.sites]
        self._devices = _devices(model)
        out: Sink
        if isinstance(sink, os.PathLike):
            sink = os.fspath(sink)
        if not isinstance(sink, str) or not sink:
            raise ProbeSinkError("moescope-probe: sink must be a trace path, tcp://HOST:PORT or unix:PATH")
        if parse_address(sink) is not None:
            tok = token if token is not None else os.environ.get("MOESCOPE_TOKEN") or None
            out = SocketSink(sink, tok, self.rank or 0, self.world or 1)
        else:
            out = FileSink(_rank_path(sink, self.rank, self.world))
        self.sink_name = out.describe()
        self.hooks = [RouterHooks(site, i, logits, self._on_layer) for i, site in enumerate(self.sites)]
        for h in self.hooks:
            h.active = self._is_active
        self.writer = Writer(out, self._layout, tag, self.rank, max_queue=max_queue)
        for h in self.hooks:
            h.install()
        self._handles = [
            model.register_forward_pre_hook(self._begin, with_kwargs=True),
            model.register_forward_hook(self._end, always_call=True),
        ]

    # -- public API ---------------------------------------------------------------------------------------------

    def step(self, n: int) -> None:
        """Numbers the forward passes that follow with training step `n` (the `step` column); call it before the
        first forward pass for the trace to have a `step` column. A dropped step drops all of its passes."""
        if self._passes == 0:
            self._step_given_before_start = True
        self._step = int(n)

    @property
    def routers(self) -> list[str]:
        """Qualified names of the routers found, in trace layer order."""
        return [s.name for s in self.sites]

    def close(self) -> ProbeReport:
        """Removes the hooks, writes what is queued, ends the stream. Returns (and, on loss, prints) a report."""
        if self._report is not None:
            return self._report
        self._closed = True
        for h in self._handles:
            h.remove()
        for hk in self.hooks:
            hk.remove()
        self.writer.close()
        st = self.writer.stats
        self._report = ProbeReport(self.sink_name, st.passes, st.tokens, st.steps_dropped, tuple(self.writer.errors))
        if st.steps_dropped or self._report.errors:
            msg = f"moescope-probe: {self.sink_name}: {st.tokens} tokens recorded, {st.steps_dropped} step(s) dropped"
            last = getattr(self.writer.sink, "last_error", None)
            if last:
                msg += f" ({last})"
            print(msg, file=sys.stderr)
            for e in self._report.errors[:5]:
                print(f"moescope-probe: {e}", file=sys.stderr)
        return self._report

    def __enter__(self) -> "Probe":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- hooks ----------------------------------------------------------------------------------------------------

    def _is_active(self) -> bool:
        return self._active

    def _begin(self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if self._active or self._closed:
            return  # a nested call of the root (e.g. from generate) belongs to the outer pass
        ids = kwargs.get("input_ids")
        if ids is None and args and isinstance(args[0], torch.Tensor) and not args[0].is_floating_point():
            ids = args[0]
        token_ids, pending = None, False
        if isinstance(ids, torch.Tensor) and ids.dim() in (1, 2):
            token_ids, pending = _copy(ids if ids.dim() == 2 else ids.unsqueeze(0))
        past = _past_length(kwargs.get("past_key_values"))
        pos = kwargs.get("position_ids")
        positions = None
        if isinstance(pos, torch.Tensor) and not pos.is_floating_point():
            positions, p2 = _copy(pos)
            pending = pending or p2
        self._pass = PassCapture(time.time_ns(), self._step, token_ids, past, positions, [], None)
        self._pending = pending
        self._active = True

    def _on_layer(self, c: LayerCapture) -> None:
        if self._pass is not None:
            self._pass.layers.append(c)

    def _end(self, module: nn.Module, args: tuple[Any, ...], out: Any) -> None:
        if not self._active:
            return
        self._active = False
        p, self._pass = self._pass, None
        if p is None or not p.layers:
            return
        if self._pending or any(c.pending for c in p.layers):
            p.event = torch.cuda.Event()  # recorded after every copy of the pass, on the same stream
            p.event.record()
        key: Hashable = ("step", p.step) if p.step is not None else ("pass", self._passes)
        self._passes += 1
        self.writer.submit(key, p)

    # -- schema ---------------------------------------------------------------------------------------------------

    def _layout(self, p: PassCapture) -> TraceLayout:
        """The trace layout, fixed by the first pass (K is known once the routers have run). Routers may differ in
        E and K: the header then gives each layer's own (docs/trace-format.md § Layers that differ in E or K)."""
        if any(h.top_k is None for h in self.hooks):
            detail = ", ".join(s.name for s, h in zip(self.sites, self.hooks) if h.top_k is None)
            raise ValueError(f"moescope-probe: the first forward pass left the top-k of {detail} unknown")
        mixed = len({s.experts for s in self.sites}) > 1 or len({h.top_k for h in self.hooks}) > 1
        big = [s.name for s in self.sites if s.experts > 65535]
        if mixed and big:  # id 65535 is the padding there (NO_EXPERT)
            raise ValueError(f"moescope-probe: layers of different shapes hold at most 65535 experts: {', '.join(big)}")
        routers = tuple(
            RouterInfo(s.layer, s.experts, int(h.top_k or 0), sc, h.kind)
            for s, h, sc in zip(self.sites, self.hooks, self._scoring)
        )
        E = max(r.experts for r in routers)
        K = max(r.top_k for r in routers)
        return TraceLayout(
            routers=routers,
            experts=E,
            top_k=K,
            has_logits=self.logits,
            has_step=self._step_given_before_start,
            has_rank=self.rank is not None,
            model=_model_name(self.model),
            devices=self._devices,
            world=self.world,
        )


def _past_length(cache: Any) -> Optional[int]:
    """Tokens already in a KV cache (read from shapes: no device sync), None when unknown."""
    if cache is None:
        return 0
    fn = getattr(cache, "get_seq_length", None)
    if callable(fn):
        try:
            return int(fn())
        except Exception:
            return None
    if isinstance(cache, (tuple, list)) and cache and isinstance(cache[0], (tuple, list)) and cache[0]:
        t = cache[0][0]
        if isinstance(t, torch.Tensor) and t.dim() >= 2:
            return int(t.shape[-2])
    return None


def attach(
    model: nn.Module,
    sink: str,
    *,
    logits: bool = False,
    tag: Optional[str] = None,
    token: Optional[str] = None,
    max_queue: int = 64,
) -> Probe:
    """Finds every router of `model` and records, per forward pass, each token's expert ids and weights per MoE
    layer (and the router logits with ``logits=True``) to `sink`: a trace path (``run.arrows``; with several
    ranks, ``{rank}`` in it or ``.rankN`` is added), ``tcp://HOST:PORT`` or ``unix:PATH`` (``moescope listen``;
    token from `token` or ``MOESCOPE_TOKEN``). `tag` labels every row. At most `max_queue` passes wait for the
    background writer; beyond that whole steps are dropped and counted. Use as a context manager or call
    ``close()``. Raises NoRouterError when the model has no router."""
    return Probe(model, sink, logits=logits, tag=tag, token=token, max_queue=max_queue)
