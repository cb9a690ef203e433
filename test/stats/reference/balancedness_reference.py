"""Balancedness as SGLang and vLLM compute it, for the expected values in test/stats/balancedness.test.ts.

    python3 test/stats/reference/balancedness_reference.py

Each function restates the expression of its source in torch (float32 where the source converts to float):
  - SGLang python/sglang/srt/eplb/expert_distribution.py, compute_utilization_rate() over
    compute_gpu_physical_count(): per layer (mean_gpu + 1e-5) / (max_gpu + 1e-5), then torch.mean over layers
    (_UtilizationRateAccumulatorMixin._append_utilization_rate).
  - vLLM vllm/distributed/eplb/eplb_state.py, EplbState.step(log_stats=True) as introduced in PR #18343:
    num_tokens_per_rank (ranks, layers) -> mean over ranks summed over layers / max over ranks summed over layers,
    0.0 when the max sum is 0.
Prints a JSON object: the device loads and both values.
"""

import json

import torch


def sglang(gpu_physical_count):  # (layers, gpus)
    c = gpu_physical_count.float()
    rate = (c.mean(dim=-1) + 1e-5) / (c.max(dim=-1).values + 1e-5)
    return torch.mean(rate).item()


def vllm(gpu_physical_count):  # (layers, gpus)
    per_rank = gpu_physical_count.T.float()  # (ranks, layers), as all_gather stacks it
    avg = per_rank.mean(dim=0).sum(dim=0).item()
    mx = per_rank.max(dim=0).values.sum(dim=0).item()
    return avg / mx if mx > 0 else 0.0


def main():
    g = torch.Generator().manual_seed(7)
    cases = [
        torch.randint(0, 1000, (5, 8), generator=g),
        torch.tensor([[10, 0, 0, 0], [1000, 1000, 1000, 1000], [0, 0, 0, 0]]),
        torch.randint(0, 50, (3, 16), generator=g) * torch.tensor([[1], [10], [100]]),
    ]
    out = [dict(devices=c.tolist(), sglang=sglang(c), vllm=vllm(c)) for c in cases]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
