"""
numpy peer of `moescope diff BASE NEW` for bench/commands.ts: the per-layer load drift between two traces —
total variation ½·Σ|p − q| and Jensen–Shannon divergence in bits of the expert shares (docs/metrics.md § Drift),
and each side's MaxVio. Not the router agreement (that pairs identical tokens: a join, not counting).
Usage: python3 bench/diff_numpy.py BASE NEW   → one JSON line on stdout.
"""
import json
import sys

import numpy as np

from stats_numpy_count import count_load


def main(base, new):
    a, tokens_a = count_load(base)
    b, tokens_b = count_load(new)
    p = a / a.sum(axis=1, keepdims=True)
    q = b / b.sum(axis=1, keepdims=True)
    m = 0.5 * (p + q)
    with np.errstate(divide="ignore", invalid="ignore"):
        term = lambda x: np.where(x > 0, 0.5 * x * np.log2(x / m), 0.0)
        js = np.maximum(0.0, (term(p) + term(q)).sum(axis=1))
    tv = np.minimum(1.0, 0.5 * np.abs(p - q).sum(axis=1))
    mv = lambda load: ((load.max(axis=1) - load.mean(axis=1)) / load.mean(axis=1))
    print(json.dumps(dict(
        tokens=[tokens_a, tokens_b],
        tv=tv.tolist(),
        js=js.tolist(),
        maxVioBase=mv(a).tolist(),
        maxVioNew=mv(b).tolist(),
    )))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
