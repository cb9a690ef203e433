"""GPU check (run by hand on a CUDA machine; not collected by pytest): the non-blocking device→host path.

    PYTHONPATH=python/src:python/tests python3 python/tests/gpu_check.py

For several tiny models on cuda: attach, forward + generate, compare with the experts' own inputs (Reference),
as test_hf_models.py does on the CPU."""
from __future__ import annotations

import os
import sys
import tempfile

import numpy as np
import pyarrow as pa
import torch

import moescope_probe
import tiny_models as tm
from reference import Reference
from transformers.models.auto import configuration_auto as ca

TYPES = sys.argv[1:] or ["mixtral", "qwen2_moe", "qwen3_moe", "olmoe", "deepseek_v3", "gpt_oss", "llama4", "granitemoe", "dbrx", "jetmoe"]
ok = 0
for mt in TYPES:
    if mt not in ca.CONFIG_MAPPING_NAMES:
        print(f"{mt}: not in this transformers")
        continue
    built = tm.build(mt, ca.CONFIG_MAPPING[mt])
    if built.model is None:
        print(f"{mt}: not built: {built.error}")
        continue
    model = built.model.to("cuda")
    ids = torch.randint(3, tm.VOCAB, (2, 5), device="cuda")
    ref = Reference(model, tm.EXPERTS)
    path = os.path.join(tempfile.mkdtemp(), "t.arrows")
    with moescope_probe.attach(model, path, logits=True) as probe, torch.no_grad():
        model(input_ids=ids)
        if built.causal_lm:
            model.generate(ids, max_new_tokens=3, do_sample=False, pad_token_id=0)
    ref.close()
    rep = probe.close()
    routed = [l for l in ref.layers if l.ids]
    t = pa.ipc.open_stream(path).read_all()
    L, K = len(routed), routed[0].ids[0].shape[1]
    got = t.column("experts").combine_chunks().values.to_numpy().reshape(-1, L, K).astype(np.int64)
    gw = t.column("weights").combine_chunks().values.to_numpy(zero_copy_only=False).reshape(-1, L, K)
    bad = []
    for l, layer in enumerate(routed):
        want = np.concatenate(layer.ids)
        g = got[:, l]
        same = np.array_equal(g, want) if layer.ordered else np.array_equal(np.sort(g, 1), np.sort(want, 1))
        if not same:
            bad.append(f"layer {l} ids")
        if layer.ordered and all(w is not None for w in layer.weights):
            if not np.array_equal(gw[:, l], np.concatenate(layer.weights).astype(np.float16)):
                bad.append(f"layer {l} weights")
    tok = np.array_equal(t.column("token_id").to_numpy(), np.concatenate(ref.input_ids).astype(np.int32))
    status = "OK" if not bad and tok and len(probe.routers) == L and rep.steps_dropped == 0 else f"FAIL {bad} tokens={tok}"
    ok += status == "OK"
    print(f"{mt}: {t.num_rows} rows, {L} layers, kinds {sorted(set(h.kind for h in probe.hooks))}: {status}", flush=True)
print(f"{ok}/{len(TYPES)} OK on {torch.cuda.get_device_name()}")
