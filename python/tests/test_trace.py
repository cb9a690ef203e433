"""The probe's trace as moescope itself reads it; steps, drops, a model without router, bad sinks."""
from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
import torch
from transformers import MixtralConfig, MixtralForCausalLM

import moescope_probe
from conftest import CLI, ROOT

E, K = 8, 2


def tiny_mixtral(layers: int = 2) -> torch.nn.Module:
    torch.manual_seed(0)
    cfg = MixtralConfig(
        hidden_size=32, intermediate_size=32, num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=4,
        num_local_experts=E, num_experts_per_tok=K, vocab_size=128, max_position_embeddings=256,
    )
    return MixtralForCausalLM(cfg).eval()


def read(path: Path) -> pa.Table:
    with pa.ipc.open_stream(str(path)) as r:
        return r.read_all()


def node() -> str:
    exe = shutil.which("node")
    if exe is None or not CLI.exists():
        pytest.fail(f"the moescope CLI is not built ({CLI}); run `npm run build` first")
    return exe


def test_cli_stats_loads_equal_numpy_bincount(tmp_path: Path) -> None:
    model = tiny_mixtral()
    trace = tmp_path / "run.arrows"
    with moescope_probe.attach(model, str(trace)) as probe, torch.no_grad():
        for step in range(3):
            probe.step(step)
            model(input_ids=torch.randint(0, 128, (4, 16)))
    t = read(trace)
    assert t.num_rows == 3 * 4 * 16
    assert t.column("step").to_pylist() == [s for s in range(3) for _ in range(64)]
    ids = t.column("experts").combine_chunks().values.to_numpy().reshape(-1, 2, K)
    out = subprocess.run([node(), str(CLI), "stats", str(trace), "--json"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    stats = json.loads(out.stdout)
    assert stats["tokens"] == t.num_rows
    for l, layer in enumerate(stats["layers"]):
        assert layer["load"] == np.bincount(ids[:, l, :].reshape(-1), minlength=E).tolist()


def test_trace_is_readable_while_it_grows(tmp_path: Path) -> None:
    model = tiny_mixtral()
    trace = tmp_path / "live.arrows"
    probe = moescope_probe.attach(model, str(trace))
    with torch.no_grad():
        model(input_ids=torch.randint(0, 128, (2, 8)))
        model(input_ids=torch.randint(0, 128, (2, 8)))  # a second step: the first is complete and written
    deadline = time.time() + 10
    rows = 0
    while time.time() < deadline and rows < 16:
        time.sleep(0.2)
        try:
            rows = sum(b.num_rows for b in pa.ipc.open_stream(str(trace)))
        except pa.ArrowInvalid:
            rows = 0
    assert rows >= 16
    out = subprocess.run([node(), str(CLI), "stats", str(trace), "--json"], capture_output=True, text=True, cwd=ROOT)
    # No end-of-stream marker yet: moescope reads what is there and says the trace is unfinished.
    assert out.returncode in (0, 2), out.stderr
    probe.close()
    assert read(trace).num_rows == 32


def test_a_full_queue_drops_whole_steps_and_counts_them(tmp_path: Path) -> None:
    model = tiny_mixtral()
    trace = tmp_path / "drop.arrows"
    probe = moescope_probe.attach(model, str(trace), max_queue=1)
    entered, release = threading.Event(), threading.Event()
    real_take = probe.writer._take

    def slow_take(key: Any, p: Any) -> None:  # the writer stalls (a slow disk, a slow listener)
        entered.set()
        release.wait(120)
        real_take(key, p)

    def until(cond: Any, what: str) -> None:  # bounded: a slow machine fails this test, never hangs it
        deadline = time.monotonic() + 60
        while not cond():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.01)

    def run_step(step: int, drain: bool) -> None:
        probe.step(step)
        for _ in range(2):  # two micro-batches per step
            model(input_ids=torch.full((1, 4), step + 3))
            if drain:  # the writer has taken this pass before the next is queued (a 1-place queue)
                until(probe.writer.queue.empty, f"the writer to take a pass of step {step}")
            if step == 1:
                assert entered.wait(60), "the writer never took step 1's first pass"
                # the writer holds step 1's first pass: the queue (1 place) is then free

    with torch.no_grad():
        run_step(0, drain=True)
        until(lambda: probe.writer.stats.passes >= 2, "step 0's two passes")
        probe.writer._take = slow_take  # type: ignore[method-assign]
        for step in range(1, 6):
            run_step(step, drain=False)  # step 1 fills the queue; steps 2…5 find it full
        release.set()
        until(probe.writer.queue.empty, "the stalled writer to catch up")
        run_step(6, drain=True)
    report = probe.close()
    t = read(trace)
    steps = t.column("step").to_numpy()
    assert sorted(set(steps.tolist())) == [0, 1, 6]
    assert report.steps_dropped == 4
    for s in (0, 1, 6):  # whole steps: both micro-batches of every kept step
        assert int((steps == s).sum()) == 8
    # The count rides on the first row written after the drops (here a row of step 1, whose second pass the
    # stalled writer took after steps 2…5 were dropped), once.
    dropped = t.column("dropped").to_pylist()
    assert sorted(d for d in dropped if d is not None) == [4]
    assert dropped.index(4) > dropped.index(None)


def test_a_model_without_router_is_refused_by_name() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(16, 8), torch.nn.ReLU(), torch.nn.Linear(8, 4))
    with pytest.raises(moescope_probe.NoRouterError, match=r"no Mixture-of-Experts router found in Sequential: looked for"):
        moescope_probe.attach(model, "unused.arrows")


def test_a_sink_that_cannot_be_created_fails_in_attach(tmp_path: Path) -> None:
    with pytest.raises(moescope_probe.ProbeSinkError, match="cannot create trace"):
        moescope_probe.attach(tiny_mixtral(), str(tmp_path / "no" / "such" / "dir.arrows"))
    with pytest.raises(moescope_probe.ProbeSinkError, match="is not tcp://HOST:PORT"):
        moescope_probe.attach(tiny_mixtral(), "tcp://localhost")
