"""Overhead of moescope_probe on a CPU MoE model whose forward dominates: time per step without the probe, with it
(ids + weights), and with logits; interleaved rounds (each round runs the three variants in a shuffled order).

    python bench/probe_overhead.py [--hidden 1024 --layers 8 --experts 64 --top-k 8 --ffn 256 --batch 4 --seq 256]
                                   [--rounds 5 --steps 3] [--threads N] [--train] [--profile]

A step is one forward pass (torch.no_grad) of a Mixtral-architecture model with random weights: the hardest case
for the probe (a training step adds a backward that the probe does not touch); `--train` times whole training steps
instead (forward with labels, backward, SGD step). Besides the wall time of a step, the CPU time of the process per
step (every thread: torch's, the probe's writer) is reported: on a shared, loaded machine the wall time swings with
the load, while the CPU seconds the probe adds do not. The probe's background writer runs
during the next step, so each variant times `--steps` consecutive steps on one attached probe; attach and close
are not timed. Prints one JSON line per variant and a summary; `--profile` prints a cProfile of the ids variant.
"""
from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import random
import statistics
import tempfile
import time
from typing import Optional

import torch
from transformers import MixtralConfig, MixtralForCausalLM

import moescope_probe


def build(a: argparse.Namespace) -> torch.nn.Module:
    torch.manual_seed(0)
    cfg = MixtralConfig(
        hidden_size=a.hidden, intermediate_size=a.ffn, num_hidden_layers=a.layers, num_attention_heads=16,
        num_key_value_heads=4, num_local_experts=a.experts, num_experts_per_tok=a.top_k, vocab_size=1024,
        max_position_embeddings=max(512, a.seq),
    )
    return MixtralForCausalLM(cfg).eval()


def sync(x: torch.Tensor) -> None:
    if x.is_cuda:
        torch.cuda.synchronize()


def time_steps(
    model: torch.nn.Module,
    x: torch.Tensor,
    steps: int,
    sink: Optional[str],
    logits: bool,
    hooks_only: bool = False,
    train: Optional[torch.optim.Optimizer] = None,
) -> list[tuple[float, float]]:
    """(wall seconds, process CPU seconds) of each step."""
    probe = moescope_probe.attach(model, sink, logits=logits) if sink else None
    if probe and hooks_only:  # breakdown: the forward-path work alone (hooks + copies), nothing queued or written
        probe.writer.submit = lambda key, p: None  # type: ignore[method-assign]
    out: list[tuple[float, float]] = []
    with torch.set_grad_enabled(train is not None):
        for s in range(steps):
            if probe:
                probe.step(s)
            sync(x)
            t0 = time.perf_counter()
            c0 = time.process_time()
            if train is not None:
                model(input_ids=x, labels=x).loss.backward()
                train.step()
                train.zero_grad(set_to_none=True)
            else:
                model(input_ids=x)
            sync(x)
            out.append((time.perf_counter() - t0, time.process_time() - c0))
    if probe:
        rep = probe.close()
        assert rep.steps_dropped == 0, rep
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--hidden", type=int, default=1024)
    p.add_argument("--layers", type=int, default=8)
    p.add_argument("--experts", type=int, default=64)
    p.add_argument("--top-k", type=int, default=8)
    p.add_argument("--ffn", type=int, default=256)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--seq", type=int, default=256)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--profile", action="store_true")
    p.add_argument("--train", action="store_true", help="time training steps (forward, backward, SGD) instead of forward passes")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    model = build(a).to(device=a.device, dtype=getattr(torch, a.dtype))
    if a.train:
        model.train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-4) if a.train else None
    x = torch.randint(0, 1024, (a.batch, a.seq), generator=torch.Generator().manual_seed(1)).to(a.device)
    tmp = tempfile.mkdtemp(prefix="probe-bench-")
    sinks = {
        "off": (None, False),
        "ids": (os.path.join(tmp, "ids.arrows"), False),
        "logits": (os.path.join(tmp, "lg.arrows"), True),
        "hooks-only": (os.path.join(tmp, "h.arrows"), False),
    }
    load_before = os.getloadavg()
    time_steps(model, x, 1, None, False, train=opt)  # warm-up
    per: dict[str, list[float]] = {k: [] for k in sinks}
    cpu: dict[str, list[float]] = {k: [] for k in sinks}
    rng = random.Random(0)
    for _ in range(a.rounds):
        order = list(sinks)
        rng.shuffle(order)
        for k in order:
            sink, lg = sinks[k]
            t = time_steps(model, x, a.steps, sink, lg, hooks_only=k == "hooks-only", train=opt)
            per[k].append(statistics.median(w for w, _ in t))
            cpu[k].append(statistics.median(c for _, c in t))
    load_after = os.getloadavg()
    base = statistics.median(per["off"])
    base_cpu = statistics.median(cpu["off"])
    res = {
        "model": f"Mixtral-arch hidden {a.hidden}, {a.layers} layers, {a.experts} experts, top-{a.top_k}, expert ffn {a.ffn}",
        "batch": f"{a.batch} x {a.seq} = {a.batch * a.seq} tokens/step",
        "step": "training step (forward, backward, SGD)" if a.train else "forward pass (no_grad)",
        "torch_threads": torch.get_num_threads(),
        "device": str(x.device) + (f" {torch.cuda.get_device_name()}" if x.is_cuda else ""),
        "dtype": a.dtype,
        "rounds": a.rounds,
        "steps_per_round": a.steps,
        "load_before": load_before,
        "load_after": load_after,
    }
    for k in sinks:
        med = statistics.median(per[k])
        # Paired by round: the overhead of each round against the same round's run without the probe.
        paired = [v / o - 1 for v, o in zip(per[k], per["off"])]
        res[k] = {
            "step_ms_median": round(med * 1e3, 1),
            "step_ms_min_max": [round(min(per[k]) * 1e3, 1), round(max(per[k]) * 1e3, 1)],
            "overhead_vs_off": round(med / base - 1, 4),
            "overhead_paired_median": round(statistics.median(paired), 4),
            "cpu_ms_median": round(statistics.median(cpu[k]) * 1e3, 1),
            "cpu_overhead_vs_off": round(statistics.median(cpu[k]) / base_cpu - 1, 4),
            "cpu_overhead_paired_median": round(statistics.median([v / o - 1 for v, o in zip(cpu[k], cpu["off"])]), 4),
        }
    print(json.dumps(res, indent=1))
    if a.profile:
        prof = cProfile.Profile()
        prof.enable()
        time_steps(model, x, a.steps, sinks["ids"][0], False, train=opt)
        prof.disable()
        pstats.Stats(prof).sort_stats("cumulative").print_stats(25)


if __name__ == "__main__":
    main()
