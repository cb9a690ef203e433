"""
numpy peer of `moescope stats TRACE --json` for bench/commands.ts (and python/tests/test_stats_analyses.py): the
same analyses from the same file, written from the definitions in docs/metrics.md, not from moescope's code.
Usage: python3 bench/stats_analyses_numpy.py TRACE [--window W] [--capacity-factor CF] [--batch-tokens B]
                                              [--pairs N]   → one JSON line on stdout.

Computes, with stats' defaults (window 512, its default collapse rules, cf 1.25, batches of 4096 tokens, 5 pairs):
  - load per layer and expert, CV, MaxVio, normalised entropy, dead experts;
  - co-activation N(i and j) / N(i) over all pairs of a token's K experts, the top pairs per layer;
  - the capacity simulation (capacity ⌈T·K/E·cf⌉ per simulated batch, `probs` and `position` drop policies);
  - collapse detection on the sliding window every `stride` tokens: dead expert, hot expert, low entropy, MaxVio
    and drift (Jensen–Shannon divergence from the first full window), each with its hysteresis.
It does not compute what `stats` also prints and these analyses do not need: repeat rates, domain and
vocabulary specialisation, loss-free balancing (traces with logits).
Streams the trace record batch by record batch (pyarrow, memory-mapped): memory stays bounded.
"""
import argparse
import json
import math
import sys
import time

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc

MAX_WARNINGS_PER_RULE = 2000


def f16_order_key(bits):
    """float16 bits → uint16 key ascending as the weights descend (NaN last)."""
    bits = bits.astype(np.uint32)
    nan = (bits & 0x7FFF) > 0x7C00
    ordered = np.where(bits & 0x8000, (~bits) & 0x7FFF, bits | 0x8000)
    return np.where(nan, 0xFFFF, 0xFFFE - ordered).astype(np.uint16)


class Capacity:
    def __init__(self, L, E, K, cf, B):
        self.L, self.E, self.K, self.cf, self.B = L, E, K, cf, B
        self.ex = []
        self.w = []
        self.fill = 0
        self.tokens = 0
        self.batches = 0
        self.dropped = np.zeros((L, E), dtype=np.int64)
        self.weight_total = np.zeros(L)
        self.dropped_weight = {"probs": np.zeros(L), "position": np.zeros(L)}
        self.affected = {"probs": np.zeros(L, dtype=np.int64), "position": np.zeros(L, dtype=np.int64)}
        self.fully = {"probs": np.zeros(L, dtype=np.int64), "position": np.zeros(L, dtype=np.int64)}

    def add(self, ex, wbits):  # (n, L, K) uint16 ids, (n, L, K) float16 bits
        n = ex.shape[0]
        t = 0
        while t < n:
            take = min(self.B - self.fill, n - t)
            self.ex.append(ex[t : t + take])
            self.w.append(wbits[t : t + take])
            self.fill += take
            t += take
            if self.fill == self.B:
                self.flush()

    def flush(self):
        L, E, K = self.L, self.E, self.K
        ex = np.concatenate(self.ex)
        wb = np.concatenate(self.w)
        self.ex, self.w = [], []
        T = ex.shape[0]
        self.fill = 0
        cap = math.ceil(T * K / E * self.cf)
        w = wb.view(np.float16).astype(np.float64)
        # Every layer at once, in (layer, token, slot) order: group = layer·E + expert.
        group = (np.arange(L, dtype=np.int64)[:, None, None] * E + ex.transpose(1, 0, 2)).reshape(-1)
        wl = w.transpose(1, 0, 2).reshape(-1)
        keys = f16_order_key(wb.transpose(1, 0, 2).reshape(-1))
        token = np.tile(np.repeat(np.arange(T), K), L)
        layer = np.repeat(np.arange(L), T * K)
        self.weight_total += wl.reshape(L, -1).sum(axis=1)
        counts = np.bincount(group, minlength=L * E)
        self.dropped += np.maximum(counts - cap, 0).reshape(L, E)
        starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
        g16 = group.astype(np.uint16) if L * E <= 0xFFFF else group
        for policy in ("position", "probs"):
            if policy == "position":
                order = np.argsort(g16, kind="stable")  # within a group: token order
            else:
                by_key = np.argsort(keys, kind="stable")  # highest weight first, then token order
                order = by_key[np.argsort(g16[by_key], kind="stable")]
            rank = np.empty(order.size, dtype=np.int64)
            rank[order] = np.arange(order.size) - starts[group[order]]
            drop = rank >= cap
            self.dropped_weight[policy] += np.bincount(layer[drop], weights=wl[drop], minlength=L)
            lost = np.bincount(layer[drop] * T + token[drop], minlength=L * T).reshape(L, T)
            self.affected[policy] += (lost > 0).sum(axis=1)
            self.fully[policy] += (lost >= K).sum(axis=1)
        self.tokens += T
        self.batches += 1

    def result(self):
        if self.fill:
            self.flush()
        L, K = self.L, self.K
        out = []
        for l in range(L):
            pol = {
                p: dict(
                    droppedWeightShare=float(self.dropped_weight[p][l] / self.weight_total[l]) if self.weight_total[l] > 0 else 0.0,
                    tokensAffected=float(self.affected[p][l] / self.tokens),
                    tokensFullyDropped=float(self.fully[p][l] / self.tokens),
                )
                for p in ("probs", "position")
            }
            out.append(dict(droppedPerExpert=self.dropped[l].tolist(), droppedShare=float(self.dropped[l].sum() / (self.tokens * K)), **pol))
        return dict(batches=self.batches, layers=out, droppedShare=float(self.dropped.sum() / (self.tokens * K * L)))


class Coactivation:
    def __init__(self, L, E, K):
        self.L, self.E, self.K = L, E, K
        self.n = np.zeros(L * E * E, dtype=np.int64)
        x, y = np.triu_indices(K, 1)
        self.x, self.y = x, y

    def add(self, ex):  # (n, L, K)
        L, E = self.L, self.E
        base = (np.arange(L, dtype=np.int64) * E)[None, :, None]
        e = ex.astype(np.int64)
        diag = (base + e) * E + e
        a, b = e[:, :, self.x], e[:, :, self.y]
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        pairs = ((base + lo) * E + hi)[a != b]
        self.n += np.bincount(diag.ravel(), minlength=self.n.size)
        self.n += np.bincount(pairs, minlength=self.n.size)

    def top_pairs(self, count):
        L, E = self.L, self.E
        out = []
        for l in range(L):
            up = self.n[l * E * E : (l + 1) * E * E].reshape(E, E)
            n_i = np.diag(up).copy()
            both = np.triu(up, 1)
            both = both + both.T
            i, j = np.nonzero((both > 0) & (n_i[:, None] > 0))
            together = both[i, j]
            ratio = together / n_i[i]
            best = np.lexsort((j, i, -together, -ratio))[:count]
            out.append([dict(a=int(i[k]), b=int(j[k]), ratio=float(ratio[k]), together=int(together[k])) for k in best])
        return out


class Collapse:
    """The window's counts every `stride` tokens from block counts of `stride` tokens (W a multiple of stride)."""

    RULES = ("dead-expert", "hot-expert", "low-entropy", "max-vio", "drift")

    def __init__(self, L, E, K, W, layer_ids):
        self.L, self.E, self.K, self.W = L, E, K, W
        self.layer_ids = layer_ids
        self.stride = max(1, W // 16)
        if W % self.stride:
            raise SystemExit(f"this peer needs the window ({W}) to be a multiple of the stride ({self.stride})")
        self.per = W // self.stride  # blocks per window
        self.hot_share = min(1.0, 3 / E)
        self.min_entropy, self.max_vio, self.drift, self.h = 0.8, 1.5, 0.05, 0.25
        self.tail = np.zeros((0, L * E), dtype=np.int64)  # the last per−1 complete blocks
        self.pending = np.zeros(L * E, dtype=np.int64)  # the block being filled
        self.pending_n = 0
        self.tokens = 0  # tokens seen (stream index of the next one)
        self.blocks_done = 0
        self.reference = None
        self.active = {r: np.zeros(L * E if r in ("dead-expert", "hot-expert") else L, dtype=bool) for r in self.RULES}
        self.kept_index = {r: np.full(L * E if r in ("dead-expert", "hot-expert") else L, -1) for r in self.RULES}
        self.fired = {r: 0 for r in self.RULES}
        self.warnings = {r: [] for r in self.RULES}

    def add(self, ex):  # (n, L, K)
        L, E, S = self.L, self.E, self.stride
        n = ex.shape[0]
        flat = (np.arange(L, dtype=np.int64)[None, :, None] * E + ex).reshape(n, -1)
        t = 0
        blocks = []
        if self.pending_n:
            take = min(S - self.pending_n, n)
            self.pending += np.bincount(flat[:take].ravel(), minlength=L * E)
            self.pending_n += take
            t = take
            if self.pending_n == S:
                blocks.append(self.pending)
                self.pending = np.zeros(L * E, dtype=np.int64)
                self.pending_n = 0
        full = (n - t) // S
        if full:
            rows = np.repeat(np.arange(full, dtype=np.int64), S * flat.shape[1]) * (L * E)
            blk = np.bincount(rows + flat[t : t + full * S].ravel(), minlength=full * L * E).reshape(full, L * E)
            blocks.extend(blk)
            t += full * S
        if t < n:
            self.pending += np.bincount(flat[t:].ravel(), minlength=L * E)
            self.pending_n += n - t
        if blocks:
            self.evaluate_blocks(np.stack(blocks))

    def evaluate_blocks(self, blocks):
        L, E, K, W = self.L, self.E, self.K, self.W
        allb = np.concatenate([self.tail, blocks])
        first_block = self.blocks_done - self.tail.shape[0]
        self.blocks_done += blocks.shape[0]
        self.tail = allb[-(self.per - 1) :] if self.per > 1 else allb[:0]
        if allb.shape[0] < self.per:
            return
        c = np.cumsum(allb, axis=0)
        win = c[self.per - 1 :].copy()
        win[1:] -= c[: -self.per]
        ends = (first_block + self.per + np.arange(win.shape[0])) * self.stride  # window end (exclusive)
        win3 = win.reshape(-1, L, E).astype(np.float64)
        total = W * K
        mean = total / E
        share = win3 / total
        with np.errstate(divide="ignore", invalid="ignore"):
            plogp = np.where(share > 0, share * np.log(share), 0.0)
        ent = np.maximum(0.0, -plogp.sum(axis=2)) / math.log(E)
        mv = (win3.max(axis=2) - mean) / mean
        if self.reference is None:
            self.reference = win3[0].copy()
        q = self.reference / self.reference.sum(axis=1, keepdims=True)
        m = 0.5 * (share + q[None])
        with np.errstate(divide="ignore", invalid="ignore"):
            js = np.where(share > 0, 0.5 * share * np.log2(share / m), 0.0) + np.where(q[None] > 0, 0.5 * q[None] * np.log2(q[None] / m), 0.0)
        js = np.maximum(0.0, js.sum(axis=2))
        hs, h = self.hot_share, self.h
        tests = {
            "dead-expert": (win3 == 0, win3 / mean >= h, win3, 0),
            "hot-expert": (share > hs, share < hs * (1 - h), share, hs),
            "low-entropy": (ent < self.min_entropy, ent > self.min_entropy + h * (1 - self.min_entropy), ent, self.min_entropy),
            "max-vio": (mv > self.max_vio, mv < self.max_vio * (1 - h), mv, self.max_vio),
            "drift": (js > self.drift, js < self.drift * (1 - h), js, self.drift),
        }
        for step in range(win3.shape[0]):
            end = int(ends[step])
            for rule in self.RULES:
                holds, clears, value, threshold = tests[rule]
                holds, clears, value = holds[step].ravel(), clears[step].ravel(), value[step].ravel()
                act = self.active[rule]
                clear = act & clears
                fire = ~act & holds
                if clear.any():
                    for slot in np.nonzero(clear & (self.kept_index[rule] >= 0))[0]:
                        self.warnings[rule][self.kept_index[rule][slot]]["clearedAt"] = end - 1
                    self.kept_index[rule][clear] = -1
                act[clear] = False
                if fire.any():
                    act[fire] = True
                    for slot in np.nonzero(fire)[0]:
                        self.fired[rule] += 1
                        if len(self.warnings[rule]) >= MAX_WARNINGS_PER_RULE:
                            continue
                        per_expert = rule in ("dead-expert", "hot-expert")
                        l, e = (divmod(int(slot), E) if per_expert else (int(slot), None))
                        self.kept_index[rule][slot] = len(self.warnings[rule])
                        self.warnings[rule].append(
                            dict(rule=rule, layerIndex=l, expert=e, window=dict(start=end - W, end=end), value=float(value[slot]),
                                 threshold=threshold, firstToken=end - 1, clearedAt=None)
                        )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("trace")
    ap.add_argument("--window", type=int, default=512)
    ap.add_argument("--capacity-factor", type=float, default=1.25)
    ap.add_argument("--batch-tokens", type=int, default=4096)
    ap.add_argument("--pairs", type=int, default=5)
    args = ap.parse_args()
    t0 = time.perf_counter()
    with pa.memory_map(args.trace) as src:
        reader = ipc.open_stream(src)
        header = json.loads(reader.schema.metadata[b"moescope"])
        schema = header["schema"]
        L, E, K = len(schema["layers"]), schema["experts"], schema["topK"]
        counts = np.zeros(L * E, dtype=np.int64)
        offs = np.repeat(np.arange(L, dtype=np.int64) * E, K)
        cap = Capacity(L, E, K, args.capacity_factor, args.batch_tokens)
        co = Coactivation(L, E, K) if K > 1 and args.pairs > 0 else None
        col = Collapse(L, E, K, args.window, schema["layers"]) if args.window > 0 else None
        tokens = 0
        for batch in reader:
            n = batch.num_rows
            if n == 0:
                continue
            ex = batch.column("experts").flatten().to_numpy().reshape(n, L, K)
            wb = batch.column("weights").flatten().to_numpy(zero_copy_only=False).view(np.uint16).reshape(n, L, K)
            counts += np.bincount((ex.reshape(n, L * K).astype(np.int64) + offs).ravel(), minlength=L * E)
            cap.add(ex, wb)
            if co is not None:
                co.add(ex)
            if col is not None:
                col.add(ex)
            tokens += n
    load = counts.reshape(L, E).astype(np.float64)
    mean = load.sum(axis=1) / E
    share = load / load.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        plogp = np.where(share > 0, share * np.log(share), 0.0)
    out = dict(
        tokens=tokens,
        load=counts.tolist(),
        cv=(load.std(axis=1) / mean).tolist(),
        maxVio=((load.max(axis=1) - mean) / mean).tolist(),
        entropy=(-plogp.sum(axis=1) / math.log(E)).tolist(),
        dead=(load == 0).sum(axis=1).tolist(),
        capacity=cap.result(),
        coactivation=co.top_pairs(args.pairs) if co is not None else None,
        warnings=None,
        fired=None,
    )
    if col is not None:
        out["fired"] = col.fired
        out["warnings"] = {r: col.warnings[r] for r in col.RULES}
    out["seconds"] = time.perf_counter() - t0
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
