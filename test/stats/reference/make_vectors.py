"""
Reference vectors for test/stats/*.test.ts, computed independently of moescope's TypeScript (numpy, and HF
transformers' own `load_balancing_loss_func` for the HF loss).

Run once from the repository root; it rewrites test/stats/reference/vectors.json:
    python3 test/stats/reference/make_vectors.py
Inputs are float16-representable so the TypeScript side (which stores weights/logits as float16) sees exactly
the same numbers.
"""
import json
import math
import os

import numpy as np
import torch
from transformers.models.mixtral.modeling_mixtral import load_balancing_loss_func

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "vectors.json")


def f16(a):
    return np.asarray(a, dtype=np.float16).astype(np.float64)


def softmax(x):
    m = x.max(axis=-1, keepdims=True)
    e = np.exp(x - m)
    return e / e.sum(axis=-1, keepdims=True)


def sig(x):
    return 1.0 / (1.0 + np.exp(-x))


def topk_desc(v, k):
    # stable: ties keep the lower index first
    order = sorted(range(len(v)), key=lambda i: (-v[i], i))
    return order[:k]


def make_case(name, rng, T, L, E, K, scoring, seq_lengths, tags, bias_scale, skew_layer):
    logits = rng.normal(0.0, 1.5, size=(T, L, E))
    if skew_layer is not None:
        logits[:, skew_layer, 0] += 2.0  # a hot expert
        logits[:, skew_layer, E - 1] -= 8.0  # an expert that is never chosen
    logits = f16(logits)
    bias = rng.uniform(-bias_scale, bias_scale, size=(L, E)) if bias_scale > 0 else np.zeros((L, E))
    experts = np.zeros((T, L, K), dtype=np.int64)
    weights = np.zeros((T, L, K))
    for t in range(T):
        for l in range(L):
            x = logits[t, l]
            s = softmax(x) if scoring == "softmax" else sig(x)
            sel = topk_desc(s + bias[l], K)
            w = s[sel] / s[sel].sum()
            # recorded slot order is shuffled so "first choice" must come from the weights, not the slot
            perm = rng.permutation(K)
            experts[t, l] = np.array(sel)[perm]
            weights[t, l] = w[perm]
    weights = f16(weights)
    seq, pos = [], []
    for s_i, n in enumerate(seq_lengths):
        seq += [s_i] * n
        pos += list(range(n))
    assert len(seq) == T
    token_id = rng.integers(0, 6, size=T)
    tag = [tags[s] if tags else None for s in seq]
    return dict(
        name=name,
        schema=dict(layers=[2 * l + 1 for l in range(L)], experts=E, topK=K, scoring=scoring, hasLogits=True),
        seq=seq,
        pos=pos,
        tokenId=token_id.tolist(),
        tag=tag,
        experts=experts.tolist(),
        weights=weights.tolist(),
        logits=logits.tolist(),
    ), logits, experts, weights, np.array(seq), np.array(pos), token_id, tag


def probs_of(x, scoring):
    if scoring == "softmax":
        return softmax(x)
    s = sig(x)
    return s / s.sum(axis=-1, keepdims=True)


def expected(case, logits, experts, weights, seq, pos, token_id, tag, cf, cap_batch, bias_rate, bias_step):
    T, L, E = logits.shape
    K = experts.shape[2]
    scoring = case["schema"]["scoring"]
    out = dict(layers=[])
    hf_pooled = float(load_balancing_loss_func(tuple(torch.tensor(logits[:, l, :]) for l in range(L)), E, K))
    # own float64 version of the pooled loss, as a cross-check of the float32 torch one
    cnt_all = np.zeros(E)
    p_all = np.zeros(E)
    for l in range(L):
        sm = softmax(logits[:, l, :])
        for t in range(T):
            for e in topk_desc(sm[t], K):
                cnt_all[e] += 1
        p_all += sm.sum(axis=0)
    hf_pooled64 = E * np.sum((cnt_all / (L * T)) * (p_all / (L * T)))
    assert abs(hf_pooled - hf_pooled64) < 1e-5 * hf_pooled64, (hf_pooled, hf_pooled64)
    out["hfAuxLossPooled"] = hf_pooled64
    for l in range(L):
        x = logits[:, l, :]
        load = np.bincount(experts[:, l, :].reshape(-1), minlength=E).astype(np.float64)
        mean = load.sum() / E
        share = load / load.sum()
        nz = share[share > 0]
        srt = np.sort(load)[::-1]
        cum = np.cumsum(srt) / load.sum()
        p = probs_of(x, scoring)
        P = p.sum(axis=0)
        first = np.array([experts[t, l, int(np.argmax(weights[t, l]))] for t in range(T)])
        c1 = np.bincount(first, minlength=E)
        hf_layer = float(load_balancing_loss_func((torch.tensor(x),), E, K))
        # sequence-wise: per sequence, sum_i f_i P_i with f_i = E/(K T_s) c_i, P_i = mean_t p
        seq_losses = []
        for s_id in np.unique(seq):
            m = seq == s_id
            Ts = m.sum()
            cs = np.bincount(experts[m, l, :].reshape(-1), minlength=E)
            f = E / (K * Ts) * cs
            seq_losses.append(float(np.sum(f * p[m].sum(axis=0) / Ts)))
        lse = np.log(np.exp(x - x.max(axis=1, keepdims=True)).sum(axis=1)) + x.max(axis=1)
        ent = -(p * np.log(p)).sum(axis=1) / math.log(E)
        scores = softmax(x) if scoring == "softmax" else sig(x)
        ss = -np.sort(-scores, axis=1)
        margin = ss[:, K - 1] - ss[:, K]
        out["layers"].append(
            dict(
                load=load.tolist(),
                cv=float(load.std() / mean),
                maxVio=float((load.max() - mean) / mean),
                entropy=float(-(nz * np.log(nz)).sum() / math.log(E)),
                deadExperts=int((load == 0).sum()),
                topNShare=float(srt[:K].sum() / load.sum()),
                coverage90=int(np.argmax(cum >= 0.9 - 1e-12) + 1),
                hfAuxLoss=hf_layer,
                switchAuxLoss=float(E / (K * T * T) * np.sum(P * load)),
                gshardAuxLoss=float(E * np.sum((P / T) * (c1 / T))),
                seqAuxLoss=float(np.mean(seq_losses)),
                importanceLoss=float(P.var() / P.mean() ** 2),
                zLoss=float(np.mean(lse**2)),
                tokenEntropy=float(ent.mean()),
                routerMargin=float(margin.mean()),
            )
        )

    # capacity: batches of cap_batch consecutive tokens, capacity = ceil(Tb*K/E*cf)
    cap_out = []
    for l in range(L):
        dropped = np.zeros(E)
        res = {}
        total_w = weights[:, l, :].sum()
        for policy in ("probs", "position"):
            lost_w = 0.0
            affected = 0
            fully = 0
            dropped_p = np.zeros(E)
            for b0 in range(0, T, cap_batch):
                b1 = min(T, b0 + cap_batch)
                Tb = b1 - b0
                cap = math.ceil(Tb * K / E * cf)
                lost = np.zeros(Tb, dtype=int)
                for e in range(E):
                    items = [(t, j) for t in range(b0, b1) for j in range(K) if experts[t, l, j] == e]
                    if len(items) <= cap:
                        continue
                    if policy == "probs":
                        items = sorted(items, key=lambda tj: (-weights[tj[0], l, tj[1]], tj[0], tj[1]))
                    for t, j in items[cap:]:
                        lost_w += weights[t, l, j]
                        lost[t - b0] += 1
                        dropped_p[e] += 1
                affected += int((lost > 0).sum())
                fully += int((lost >= K).sum())
            res[policy] = dict(droppedWeightShare=float(lost_w / total_w), tokensAffected=affected / T, tokensFullyDropped=fully / T)
            dropped = dropped_p
        cap_out.append(dict(droppedPerExpert=dropped.tolist(), droppedShare=float(dropped.sum() / (T * K)), **res))
    out["capacity"] = cap_out

    # co-activation over all pairs: N(i and j) / N(i)
    co = []
    for l in range(L):
        N = np.zeros((E, E))
        for t in range(T):
            sel = experts[t, l]
            for i in sel:
                for j in sel:
                    N[i, j] += 1
        with np.errstate(invalid="ignore", divide="ignore"):
            R = N / np.diag(N)[:, None]
        co.append([[None if math.isnan(v) else float(v) for v in row] for row in R])
    out["coactivation"] = co

    # consecutive tokens (same seq, pos+1): same first choice; any overlap of the top-2 sets
    rep = []
    for l in range(L):
        pairs = same = ov = 0
        for t in range(1, T):
            if seq[t] != seq[t - 1] or pos[t] != pos[t - 1] + 1:
                continue
            pairs += 1
            a = experts[t - 1, l][np.argsort(-weights[t - 1, l], kind="stable")[:2]]
            b = experts[t, l][np.argsort(-weights[t, l], kind="stable")[:2]]
            same += int(a[0] == b[0])
            ov += int(len(set(a.tolist()) & set(b.tolist())) > 0)
        rep.append(dict(pairs=pairs, firstChoice=same / pairs, topTwoOverlap=ov / pairs))
    out["repeat"] = rep
    out["randomTopTwoOverlap"] = 1 - math.comb(E - 2, 2) / math.comb(E, 2)

    # domain specialisation: share of a tag's tokens routed to each expert
    dom = {}
    for tg in sorted(set(x for x in tag if x is not None)):
        m = np.array([x == tg for x in tag])
        dom[tg] = [(np.bincount(experts[m, l, :].reshape(-1), minlength=E) / m.sum()).tolist() for l in range(L)]
    out["domains"] = dom

    # vocabulary specialisation at the last layer: occurrence-weighted mean of max_e N(x->e)/N(x), ids seen >= 2 times
    l = L - 1
    num = den = 0
    for x_id in np.unique(token_id):
        m = token_id == x_id
        n = m.sum()
        if n < 2:
            continue
        c = np.bincount(experts[m, l, :].reshape(-1), minlength=E)
        num += c.max()
        den += n
    out["vocabMeanMaxShare"] = num / den

    # DeepSeek loss-free balancing: select top-K of s + b, b += u * sign(mean - c) after every bias_step tokens
    b = np.zeros((L, E))
    online = np.zeros((L, E))
    step = np.zeros((L, E))
    n_in = 0
    for t in range(T):
        for l in range(L):
            s = softmax(logits[t, l]) if scoring == "softmax" else sig(logits[t, l])
            v = s + b[l]
            sel = topk_desc(v, K)
            srt = sorted(v, reverse=True)
            assert srt[K - 1] - srt[K] > 1e-9, "tie at the top-K boundary; pick another seed"
            for e in sel:
                online[l, e] += 1
                step[l, e] += 1
        n_in += 1
        if n_in == bias_step:
            for l in range(L):
                b[l] += bias_rate * np.sign(step[l].mean() - step[l])
            step[:] = 0
            n_in = 0
    final = np.zeros((L, E))
    changed = np.zeros(L)
    for t in range(T):
        for l in range(L):
            s = softmax(logits[t, l]) if scoring == "softmax" else sig(logits[t, l])
            sel = topk_desc(s + b[l], K)
            for e in sel:
                final[l, e] += 1
                changed[l] += int(e not in set(experts[t, l].tolist()))

    def maxvio(v):
        return float((v.max() - v.mean()) / v.mean())

    out["lossFree"] = dict(
        bias=b.tolist(),
        maxVioOnline=[maxvio(online[l]) for l in range(L)],
        loadFinal=final.tolist(),
        maxVioFinal=[maxvio(final[l]) for l in range(L)],
        changedShare=(changed / (T * K)).tolist(),
    )
    return out


def main():
    rng = np.random.default_rng(20240517)
    cases = []
    params = dict(cf=1.0, cap_batch=16, bias_rate=0.01, bias_step=16)
    a = make_case("softmax-top2", rng, T=64, L=3, E=8, K=2, scoring="softmax", seq_lengths=[40, 24],
                  tags=["code", "prose"], bias_scale=0.0, skew_layer=2)
    cases.append(dict(input=a[0], params=params, expected=expected(*a, **params)))
    b = make_case("sigmoid-top4-biased", rng, T=48, L=2, E=16, K=4, scoring="sigmoid", seq_lengths=[16, 16, 16],
                  tags=None, bias_scale=0.3, skew_layer=None)
    cases.append(dict(input=b[0], params=params, expected=expected(*b, **params)))
    with open(OUT, "w") as f:
        json.dump(dict(generatedBy="test/stats/reference/make_vectors.py", cases=cases), f)
    for c in cases:
        print(c["input"]["name"], "hf pooled", c["expected"]["hfAuxLossPooled"],
              "layer0 cv", c["expected"]["layers"][0]["cv"])


if __name__ == "__main__":
    main()
