"""Expected outputs of DeepSeek's EPLB for test/stats/eplb.test.ts, computed by the Python original.

Run once (python3 with torch), with eplb.py from github.com/deepseek-ai/EPLB at commit
d52c72d5b2f2fb4c41afbf8eb21366820239913d saved somewhere outside this repository:

    python3 test/stats/reference/eplb_reference.py /path/to/eplb.py > test/stats/reference/eplb-expected.json

The JSON holds each case's inputs and the original's phy2log / log2phy / logcnt, plus the index order that
torch.sort(descending=True) gives tie-heavy float32 vectors (the order EPLB packs items in). npm test only reads
the JSON; it never runs Python.
"""

import importlib.util
import json
import sys

import numpy as np
import torch


def load_eplb(path):
    spec = importlib.util.spec_from_file_location("eplb", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def f32_list(a):
    """float32 values as Python floats (exact), so JSON → Math.fround recovers the same float32."""
    return [[float(np.float32(x)) for x in row] for row in a]


def main():
    eplb = load_eplb(sys.argv[1])
    rng = np.random.default_rng(20240501)
    cases = []

    def case(name, weight, replicas, groups, nodes, gpus):
        w = torch.tensor(weight, dtype=torch.float32)
        phy2log, log2phy, logcnt = eplb.rebalance_experts(w, replicas, groups, nodes, gpus)
        cases.append(dict(name=name, weight=weight, replicas=replicas, groups=groups, nodes=nodes, gpus=gpus,
                          phy2log=phy2log.tolist(), log2phy=log2phy.tolist(), logcnt=logcnt.tolist()))

    def ints(layers, experts, hi):
        return rng.integers(0, hi, size=(layers, experts)).tolist()

    def zipf(layers, experts, scale):
        # Skewed like real routing: a few hot experts, many ties among the cold ones after rounding.
        out = []
        for _ in range(layers):
            p = rng.permutation(experts)
            out.append([int(scale / (1 + int(r)) ** 1.1) for r in p])
        return out

    readme = [[90, 132, 40, 61, 104, 165, 39, 4, 73, 56, 183, 86],
              [20, 107, 104, 64, 19, 197, 187, 157, 172, 86, 16, 27]]
    case("readme", readme, 16, 4, 2, 8)
    case("readme-global", readme, 16, 3, 2, 8)
    case("small-ints-hierarchical", ints(3, 16, 4), 24, 4, 2, 4)
    case("small-ints-global", ints(3, 16, 4), 24, 4, 3, 6)
    case("one-group-per-node", ints(2, 12, 50), 18, 3, 3, 6)
    case("one-replica-per-gpu", ints(2, 8, 30), 12, 2, 2, 12)
    case("no-redundancy", ints(2, 16, 100), 16, 4, 2, 8)
    case("single-node-many-ties", ints(2, 64, 3), 96, 8, 1, 4)
    case("all-zero", [[0] * 24, [0] * 24], 32, 4, 2, 8)
    case("fractional", f32_list(rng.random((3, 64)) * 100), 80, 8, 2, 8)
    case("qwen-60-global", zipf(3, 60, 5000), 64, 1, 1, 8)
    case("deepseek-v3-hierarchical", zipf(4, 256, 100000), 288, 8, 4, 32)
    case("deepseek-v3-global", zipf(3, 256, 400), 288, 8, 3, 24)

    sorts = []
    for n in [17, 18, 24, 33, 36, 64, 100, 288, 1000]:
        for hi in [2, 5]:
            keys = (rng.integers(0, hi, size=n) / 4).astype(np.float32)
            order = torch.tensor(keys).sort(-1, descending=True).indices.tolist()
            sorts.append(dict(keys=[float(k) for k in keys], order=order))

    json.dump(dict(source="deepseek-ai/EPLB eplb.py @ d52c72d5b2f2fb4c41afbf8eb21366820239913d",
                   torch=torch.__version__, cases=cases, sorts=sorts), sys.stdout, separators=(",", ":"))
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
