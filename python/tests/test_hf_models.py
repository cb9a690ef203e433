"""Every MoE model class of the installed transformers, tiny and random: the probe's trace equals what each MoE
layer's experts were handed (read by the test's own hooks), for a forward pass and a generate."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import torch

import moescope_probe
import tiny_models as tm
from reference import Reference

# Required by the issue: each must be built, found and match (never skipped).
REQUIRED = {"mixtral", "qwen2_moe", "qwen3_moe", "olmoe", "deepseek_v3", "gpt_oss", "llama4", "granitemoe"}

MODEL_TYPES = tm.moe_model_types()


def _read(path: Path) -> pa.Table:
    with pa.ipc.open_stream(str(path)) as r:
        return r.read_all()


def test_the_required_classes_are_installed() -> None:
    have = {mt for mt, _ in MODEL_TYPES}
    assert REQUIRED <= have, f"missing from transformers {tm.transformers.__version__}: {REQUIRED - have}"


@pytest.mark.parametrize("model_type,cls", MODEL_TYPES, ids=[mt for mt, _ in MODEL_TYPES])
def test_trace_equals_the_routers_own_selection(model_type: str, cls: type, tmp_path: Path) -> None:
    built = tm.build(model_type, cls)
    if built.model is None:
        assert model_type not in REQUIRED, built.error
        pytest.skip(f"no tiny {model_type} from its config: {built.error}")
    model = built.model
    ids = torch.randint(3, tm.VOCAB, (2, 5), generator=torch.Generator().manual_seed(1))
    try:  # the model itself must run at this size, without the probe
        with torch.no_grad():
            model(input_ids=ids)
    except Exception as e:
        assert model_type not in REQUIRED, e
        pytest.skip(f"tiny {model_type} does not run: {type(e).__name__}: {str(e)[:120]}")

    ref = Reference(model, tm.EXPERTS)
    trace = tmp_path / "t.arrows"
    try:
        probe = moescope_probe.attach(model, str(trace), logits=True, tag="test")
    except moescope_probe.NoRouterError as e:
        # Only acceptable when the model routes nothing the test's own hooks can see either.
        with torch.no_grad():
            model(input_ids=ids)
        ref.close()
        assert model_type not in REQUIRED
        assert not any(layer.ids for layer in ref.layers), f"routing the probe missed: {e}"
        pytest.skip(f"{model_type}: the tiny model routes no token through a top-k router (dense at this size): {e}")
    with probe, torch.no_grad():
        model(input_ids=ids)
        if built.causal_lm and hasattr(model, "generate"):
            model.generate(ids, max_new_tokens=3, do_sample=False, pad_token_id=0)
    ref.close()
    report = probe.close()
    assert report.steps_dropped == 0 and not report.errors, report

    routed = [layer for layer in ref.layers if layer.ids]
    assert routed, "the test's hooks saw no routing"
    assert len(probe.routers) == len(routed), (probe.routers, [l.name for l in routed])
    t = _read(trace)
    meta = t.schema.metadata[b"moescope"]
    L, K = len(routed), routed[0].ids[0].shape[1]
    routed_over = tm.EXPERTS + (getattr(model.config, "zero_expert_num", None) or 0)  # LongCat's identity experts
    assert f'"topK":{K}'.encode() in meta and f'"experts":{routed_over}'.encode() in meta
    got_ids = t.column("experts").combine_chunks().values.to_numpy().reshape(-1, L, K)
    got_w = t.column("weights").combine_chunks().values.to_numpy(zero_copy_only=False).reshape(-1, L, K)
    for l, layer in enumerate(routed):
        want = np.concatenate(layer.ids)
        assert got_ids.shape[0] == want.shape[0], f"{layer.name}: {got_ids.shape[0]} rows, reference {want.shape[0]}"
        got = got_ids[:, l, :].astype(np.int64)
        if layer.ordered:
            assert np.array_equal(got, want), f"{layer.name}: ids differ in {int((got != want).any(1).sum())} rows"
        else:
            assert np.array_equal(np.sort(got, 1), np.sort(want, 1)), f"{layer.name}: id sets differ"
        if all(w is not None for w in layer.weights):
            ww = np.concatenate(layer.weights).astype(np.float16)
            g = got_w[:, l, :]
            if not layer.ordered:
                g = np.take_along_axis(g, np.argsort(got, 1), 1)
                ww = np.take_along_axis(ww, np.argsort(want, 1), 1)
            assert np.array_equal(g, ww), f"{layer.name}: weights differ beyond float16"
    tokens = np.concatenate(ref.input_ids)
    assert np.array_equal(t.column("token_id").to_numpy(), tokens.astype(np.int32))
    assert set(t.column("tag").to_pylist()) == {"test"}
