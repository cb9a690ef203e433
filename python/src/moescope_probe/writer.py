"""The background thread: turns queued forward passes into record batches and hands them to the sink.

The training loop only ever does ``Queue.put_nowait``. When the queue is full, the pass's whole step is dropped
(every pass of it, including those already queued), counted, and the count rides on the next row written, in
its ``dropped`` cell. Batches a socket could not deliver count likewise. Rows are gathered into batches of at
least ``batch_tokens`` rows or written once a second, whichever comes first.
"""
from __future__ import annotations

import queue
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Hashable, Optional

import pyarrow as pa

from .arrow import Rows, TraceLayout, encode, trace_schema
from .capture import PassCapture
from .rows import RowBuilder
from .sinks import Sink

_STOP = object()
FLUSH_SECONDS = 1.0


@dataclass
class WriterStats:
    """What the writer did, for the report on close."""

    passes: int = 0
    tokens: int = 0
    batches: int = 0
    steps_dropped: int = 0
    errors: list[str] = field(default_factory=list)


class Writer:
    """Owns the queue, the thread, the schema and the sink."""

    def __init__(
        self,
        sink: Sink,
        layout_for: Callable[[PassCapture], TraceLayout],
        tag: Optional[str],
        rank: Optional[int],
        max_queue: int = 64,
        batch_tokens: int = 8192,
    ) -> None:
        self.sink = sink
        self.layout_for = layout_for
        self.tag = tag
        self.rank = rank
        self.batch_tokens = batch_tokens
        self.queue: "queue.Queue[object]" = queue.Queue(maxsize=max_queue)
        self.stats = WriterStats()
        self._lock = threading.Lock()
        self._dropped_keys: "OrderedDict[Hashable, None]" = OrderedDict()
        self._pending_dropped = 0  # steps dropped not yet written on a row
        self._layout: Optional[TraceLayout] = None
        self._schema: Optional[pa.Schema] = None
        self._builder: Optional[RowBuilder] = None
        self._rows: list[Rows] = []
        self._row_keys: list[Hashable] = []
        self._last_flush = time.monotonic()
        self.current_key: Hashable = None
        self._thread = threading.Thread(target=self._run, name="moescope-probe-writer", daemon=True)
        self._thread.start()

    # -- training-loop side ---------------------------------------------------------------------------------------

    def submit(self, key: Hashable, p: PassCapture) -> None:
        """Queues a pass, or drops its whole step when the queue is full. Never blocks."""
        with self._lock:
            self.current_key = key
            if key in self._dropped_keys:
                return
        try:
            self.queue.put_nowait((key, p))
        except queue.Full:
            self._drop(key)

    def _drop(self, key: Hashable) -> None:
        with self._lock:
            if key in self._dropped_keys:
                return
            self._dropped_keys[key] = None
            while len(self._dropped_keys) > 4096:
                self._dropped_keys.popitem(last=False)
            self._pending_dropped += 1
            self.stats.steps_dropped += 1

    def close(self, timeout: float = 120.0) -> None:
        """Writes everything queued, ends the stream and stops the thread."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.queue.put(_STOP, timeout=0.1)
                break
            except queue.Full:
                if not self._thread.is_alive() or time.monotonic() > deadline:
                    break
        self._thread.join(max(0.0, deadline - time.monotonic()))

    # -- thread side ----------------------------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                wait = max(0.0, FLUSH_SECONDS - (time.monotonic() - self._last_flush)) if self._rows else None
                try:
                    item = self.queue.get(timeout=wait)
                except queue.Empty:
                    self._flush()
                    continue
                if item is _STOP:
                    self._flush(final=True)
                    break
                key, p = item  # type: ignore[misc]
                self._take(key, p)
                if sum(r.n for r in self._rows) >= self.batch_tokens or time.monotonic() - self._last_flush >= FLUSH_SECONDS:
                    self._flush()
        except Exception as e:  # never let the thread die silently: the report names it
            self.stats.errors.append(f"writer stopped: {type(e).__name__}: {e}")
        finally:
            try:
                if self._schema is None and self._layout is None:
                    pass  # nothing was ever routed: no schema to write (an empty file stays empty)
                self.sink.close()
            except Exception as e:
                self.stats.errors.append(f"closing {self.sink.describe()}: {e}")

    def _take(self, key: Hashable, p: PassCapture) -> None:
        with self._lock:
            if key in self._dropped_keys:
                return
        if p.event is not None:
            p.event.synchronize()
        if self._layout is None:
            try:
                self._layout = self.layout_for(p)
            except ValueError as e:
                self.stats.errors.append(str(e))
                raise
            self._schema = trace_schema(self._layout)
            self._builder = RowBuilder(
                [r.experts for r in self._layout.routers],
                [r.top_k for r in self._layout.routers],
                self._layout.has_logits,
            )
        assert self._builder is not None
        with self._lock:
            dropped, self._pending_dropped = self._pending_dropped, 0
        rows = self._builder.build(p, dropped)
        if rows is None:
            with self._lock:
                self._pending_dropped += dropped
            return
        self._rows.append(rows)
        self._row_keys.append(key)
        self.stats.passes += 1

    def _flush(self, final: bool = False) -> None:
        """Writes the gathered rows of complete steps; rows of the step still running wait (unless `final`)."""
        self._last_flush = time.monotonic()
        with self._lock:
            dropped = set(k for k in self._row_keys if k in self._dropped_keys)
            current = self.current_key
        if dropped:  # a step dropped after some of its passes were queued: none of it is written
            keep = [(r, k) for r, k in zip(self._rows, self._row_keys) if k not in dropped]
            carried = sum(r.dropped for r, k in zip(self._rows, self._row_keys) if k in dropped)
            with self._lock:
                self._pending_dropped += carried
            self._rows = [r for r, _ in keep]
            self._row_keys = [k for _, k in keep]
        hold = 0
        if not final and isinstance(current, tuple) and current[0] == "step":
            while hold < len(self._row_keys) and self._row_keys[len(self._row_keys) - 1 - hold] == current:
                hold += 1
        ready = len(self._rows) - hold
        if ready <= 0:
            return
        rows, keys = self._rows[:ready], self._row_keys[:ready]
        self._rows, self._row_keys = self._rows[ready:], self._row_keys[ready:]
        self._send(rows, keys)

    def _send(self, rows: list[Rows], keys: list[Hashable]) -> None:
        assert self._layout is not None and self._schema is not None
        batch = encode(rows, self._schema, self._layout, self.tag, self.rank)
        if self.sink.send(self._schema, batch):
            self.stats.tokens += batch.num_rows
            self.stats.batches += 1
        else:
            # Not delivered (listener gone): its steps are dropped, and so are the counts that rode on it.
            with self._lock:
                lost_keys = [k for k in dict.fromkeys(keys) if k not in self._dropped_keys]
                for k in lost_keys:
                    self._dropped_keys[k] = None
                carried = sum(r.dropped for r in rows)
                self._pending_dropped += len(lost_keys) + carried
                self.stats.steps_dropped += len(lost_keys)

    @property
    def errors(self) -> list[str]:
        out = list(self.stats.errors)
        if self._builder is not None:
            out += self._builder.errors
        return out
