"""One rank of a two-process gloo job (run by torchrun from test_socket.py): streams to the listener given and
saves its routers' own selections (read with its own hooks) for the test to compare."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).parent))
import moescope_probe  # noqa: E402
from test_trace import tiny_mixtral  # noqa: E402


def main() -> None:
    sink, out = sys.argv[1], Path(sys.argv[2])
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    model = tiny_mixtral()
    own: list[list[np.ndarray]] = [[], []]
    for l, layer in enumerate(model.model.layers):
        layer.mlp.gate.register_forward_hook(lambda m, a, o, l=l: own[l].append(o[2].numpy().copy()))
    g = torch.Generator().manual_seed(100 + rank)
    with moescope_probe.attach(model, sink) as probe, torch.no_grad():
        for step in range(4):
            probe.step(step)
            model(input_ids=torch.randint(0, 128, (2, 16), generator=g))
            dist.barrier()
    ids = np.stack([np.concatenate(own[0]), np.concatenate(own[1])], axis=1)  # [tokens, L, K]
    np.save(out / f"ids{rank}.npy", ids)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
