"""The moescope trace schema (docs/trace-format.md) in pyarrow, and encoding rows into record batches.

Columns, in file order: seq, pos, token_id, token, is_prompt, t_ns, experts, weights, [logits], tag, mem, then
the optional producer columns [step] (uint32, when the caller numbers steps), [rank] (uint16, when
torch.distributed is initialised) and dropped (nullable uint32: whole steps the probe dropped since its previous
row). The schema metadata key ``moescope`` holds the header JSON: format, moescope, createdAt, schema, meta.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Optional

import numpy as np
import pyarrow as pa

from . import __version__

TRACE_FORMAT_VERSION = 1


@dataclass(frozen=True)
class RouterInfo:
    """One router as the trace header describes it (a RouterSummary)."""

    layer: int
    experts: int
    top_k: int
    scoring: str  # "softmax" | "sigmoid"
    kind: str  # how the probe reads it: module-topk, module-mask, topk-in-router, topk-in-block


NO_EXPERT = 65535
"""Expert id of a slot past its layer's own top-k (layers that differ in E or K): never a real expert."""


@dataclass(frozen=True)
class TraceLayout:
    """What the schema depends on. `experts` / `top_k` are the largest over the routers; each router's own are in
    `routers` (docs/trace-format.md § Layers that differ in E or K)."""

    routers: tuple[RouterInfo, ...]
    experts: int
    top_k: int
    has_logits: bool
    has_step: bool
    has_rank: bool
    model: Optional[str]
    devices: tuple[str, ...]
    world: Optional[int]

    @property
    def layers(self) -> int:
        return len(self.routers)

    @property
    def mixed(self) -> bool:
        """Whether the layers differ in E or K (the header then gives each layer's own)."""
        return any(r.experts != self.experts or r.top_k != self.top_k for r in self.routers)


def _fixed(name: str, size: int, child: pa.DataType) -> pa.Field:
    return pa.field(name, pa.list_(pa.field("item", child, nullable=False), size), nullable=False)


def header_json(layout: TraceLayout, created: Optional[datetime] = None) -> str:
    """The `moescope` schema metadata value."""
    when = (created or datetime.now(timezone.utc)).astimezone(timezone.utc)
    scoring = "sigmoid" if layout.routers and all(r.scoring == "sigmoid" for r in layout.routers) else "softmax"
    meta: dict[str, object] = {
        "model": layout.model,
        "routers": [
            {"layer": r.layer, "experts": r.experts, "topK": r.top_k, "scoring": r.scoring, "kind": r.kind}
            for r in layout.routers
        ],
        "tokenizer": None,
        "devices": list(layout.devices),
        "source": "probe",
    }
    if layout.world is not None:
        meta["world"] = layout.world
    schema: dict[str, object] = {
        "layers": [r.layer for r in layout.routers],
        "experts": layout.experts,
        "topK": layout.top_k,
        "scoring": scoring,
        "hasLogits": layout.has_logits,
    }
    if layout.mixed:
        schema["layerExperts"] = [r.experts for r in layout.routers]
        schema["layerTopK"] = [r.top_k for r in layout.routers]
    header = {
        "format": TRACE_FORMAT_VERSION,
        "moescope": __version__,
        "createdAt": when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z",
        "schema": schema,
        "meta": meta,
    }
    return json.dumps(header, separators=(",", ":"))


def trace_schema(layout: TraceLayout, created: Optional[datetime] = None) -> pa.Schema:
    """The Arrow schema of a trace with this layout."""
    LK = layout.layers * layout.top_k
    fields = [
        pa.field("seq", pa.uint32(), nullable=False),
        pa.field("pos", pa.uint32(), nullable=False),
        pa.field("token_id", pa.int32(), nullable=False),
        pa.field("token", pa.utf8(), nullable=False),
        pa.field("is_prompt", pa.bool_(), nullable=False),
        pa.field("t_ns", pa.timestamp("ns"), nullable=False),
        _fixed("experts", LK, pa.uint16()),
        _fixed("weights", LK, pa.float16()),
    ]
    if layout.has_logits:
        fields.append(_fixed("logits", layout.layers * layout.experts, pa.float16()))
    fields += [pa.field("tag", pa.utf8(), nullable=True), pa.field("mem", pa.utf8(), nullable=True)]
    if layout.has_step:
        fields.append(pa.field("step", pa.uint32(), nullable=True))
    if layout.has_rank:
        fields.append(pa.field("rank", pa.uint16(), nullable=False))
    fields.append(pa.field("dropped", pa.uint32(), nullable=True))
    return pa.schema(fields, metadata={"moescope": header_json(layout, created)})


@dataclass
class Rows:
    """Columns of n token rows, as NumPy arrays (experts [n, L·K] uint16, weights [n, L·K] float16, …; a layer's
    slots past its own K hold NO_EXPERT with weight 0, its logits past its own E −Inf)."""

    seq: np.ndarray
    pos: np.ndarray
    token_id: np.ndarray
    is_prompt: np.ndarray
    t_ns: np.ndarray
    experts: np.ndarray
    weights: np.ndarray
    logits: Optional[np.ndarray]
    step: Optional[int]
    dropped: int  # steps dropped before the first of these rows

    @property
    def n(self) -> int:
        return int(self.seq.shape[0])


def encode(rows: list[Rows], schema: pa.Schema, layout: TraceLayout, tag: Optional[str], rank: Optional[int]) -> pa.RecordBatch:
    """One record batch of all `rows` (concatenated)."""
    n = sum(r.n for r in rows)

    def cat(attr: str) -> np.ndarray:
        return np.concatenate([getattr(r, attr) for r in rows]) if len(rows) > 1 else getattr(rows[0], attr)

    by_name = {f.name: f.type for f in schema}
    arrays: list[pa.Array] = [
        pa.array(cat("seq"), pa.uint32()),
        pa.array(cat("pos"), pa.uint32()),
        pa.array(cat("token_id"), pa.int32()),
        _same_string(n, ""),
        pa.array(cat("is_prompt"), pa.bool_()),
        pa.array(cat("t_ns"), pa.timestamp("ns")),
        pa.FixedSizeListArray.from_arrays(pa.array(cat("experts").reshape(-1), pa.uint16()), type=by_name["experts"]),
        pa.FixedSizeListArray.from_arrays(pa.array(cat("weights").reshape(-1), pa.float16()), type=by_name["weights"]),
    ]
    if layout.has_logits:
        lg = cat("logits")
        arrays.append(pa.FixedSizeListArray.from_arrays(pa.array(lg.reshape(-1), pa.float16()), type=by_name["logits"]))
    arrays.append(_same_string(n, tag))
    arrays.append(pa.nulls(n, pa.utf8()))
    if layout.has_step:
        steps = np.concatenate([np.full(r.n, r.step if r.step is not None else 0, np.uint32) for r in rows])
        arrays.append(pa.array(steps, pa.uint32()))
    if layout.has_rank:
        arrays.append(pa.array(np.full(n, rank or 0, np.uint16), pa.uint16()))
    dropped = np.zeros(n, np.uint32)
    first = np.cumsum([0] + [r.n for r in rows[:-1]])
    dropped[first] = [r.dropped for r in rows]
    arrays.append(pa.array(dropped, pa.uint32(), mask=dropped == 0))  # null where nothing was dropped
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _same_string(n: int, s: Optional[str]) -> pa.Array:
    """n copies of `s` (nulls for None), built from buffers rather than a Python list of n strings."""
    if s is None:
        return pa.nulls(n, pa.utf8())
    data = s.encode("utf-8")
    offsets = np.arange(n + 1, dtype=np.int32) * len(data)
    return pa.Array.from_buffers(pa.utf8(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data * n)])
