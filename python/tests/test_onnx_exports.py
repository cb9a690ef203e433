"""Every MoE model class of the installed transformers, tiny and random, exported to ONNX (TorchScript exporter;
the dynamo exporter too for the families in DYNAMO) and run by `moescope run`: per token and per router, the
recorded top-k set equals what the model's experts were handed in PyTorch (the test's own hooks, reference.py), and
each expert's weight equals, to float16 precision, the weight that multiplied that expert's output (or input).
A router the engine cannot follow to the mixing must say so in the trace (mixing "not-followed", weights NaN) and
still record the right selection. Exports that torch itself cannot produce, or that onnxruntime cannot load, are
skipped with the reason: they are not moescope's to fix.

MOESCOPE_EXPORT_DIR=DIR keeps the exports (and a summary line per export in DIR/summary.txt) for inspection."""
from __future__ import annotations

import json
import os
import re
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import torch

import tiny_models as tm
from conftest import CLI
from reference import Reference

onnx = pytest.importorskip("onnx", reason="the ONNX exporters need the onnx package")
try:
    import onnxscript  # noqa: F401

    HAVE_DYNAMO = True
except ImportError:  # the dynamo exporter needs onnxscript
    HAVE_DYNAMO = False

# Families exported with the dynamo exporter as well (it takes seconds per model: a representative few).
DYNAMO = {"mixtral", "qwen3_moe", "deepseek_v3", "gpt_oss", "llama4", "dbrx", "qwen2_moe"}
# Must be exported, found and matched (never skipped).
REQUIRED = {"mixtral", "qwen2_moe", "qwen3_moe", "olmoe", "deepseek_v3", "gpt_oss", "llama4", "dbrx"}
# Families whose attention does not export (complex RoPE: aten::polar) run as the model's own embedding, MoE blocks
# and head (_MoeStack): the routers are the HF classes' own, which is what is tested.
MOE_ONLY = {"llama4", "deepseek_v2"}
# The default run: one family per routing pattern (MOESCOPE_ALL_FAMILIES=1: every MoE class transformers ships).
FAMILIES = {"mixtral", "qwen2_moe", "qwen3_moe", "olmoe", "deepseek_v2", "deepseek_v3", "gpt_oss", "llama4", "dbrx",
            "granitemoe", "granitemoeshared", "afmoe", "glm4_moe_lite", "flex_olmo", "minimax", "hy_v3", "inkling_mm_model", "jetmoe"}
ALL = os.environ.get("MOESCOPE_ALL_FAMILIES") == "1"
INPUTS = [[int(x) for x in torch.randint(3, tm.VOCAB, (11,), generator=torch.Generator().manual_seed(11))]]
KEEP = os.environ.get("MOESCOPE_EXPORT_DIR")

def _ffn(c, name):  # type: ignore[no-untyped-def]
    f = c.ffn_config
    return f[name] if isinstance(f, dict) else getattr(f, name)


# What inspect must say about each router, from the model's own configuration (not from moescope's output).
EXPECTED = {
    # Llama-4: top-k on raw logits, scattered into [tokens, E] and put through a sigmoid; no renormalisation
    "llama4": lambda c, e: {"kind": "topk-sigmoid", "scoring": "sigmoid", "renormalize": False, "mixing.layout": "dense"},
    # DBRX: moe_normalize_expert_weights = 1 → weights divided by their L1 norm; the eager loop cannot be followed
    "dbrx": lambda c, e: {"renormalize": None, "mixing.status": "not-followed"} if e == "torchscript-eager"
    else {"kind": "softmax-topk", "renormalize": _ffn(c, "moe_normalize_expert_weights") == 1, "mixing.status": "followed"},
    # DeepSeek-V2 group_limited_greedy: groups scored by their max
    "deepseek_v2": lambda c, e: {"groups": {"count": c.n_group, "topk": c.topk_group}, "kind": "softmax-group-topk",
                                 "renormalize": False, "scalingFactor": None if c.routed_scaling_factor == 1 else c.routed_scaling_factor},
    "deepseek_v3": lambda c, e: {"groups": {"count": c.n_group, "topk": c.topk_group}, "kind": "sigmoid-group-topk",
                                 "renormalize": bool(c.norm_topk_prob), "scalingFactor": c.routed_scaling_factor},
    "gpt_oss": lambda c, e: {"kind": "topk-softmax", "scoring": "softmax", "renormalize": True},
    "mixtral": lambda c, e: {"kind": "softmax-topk", "renormalize": True, "scalingFactor": None},
    "qwen2_moe": lambda c, e: {"renormalize": bool(c.norm_topk_prob), "sharedExpert.gated": True},
    "qwen3_moe": lambda c, e: {"renormalize": bool(c.norm_topk_prob)},
    "olmoe": lambda c, e: {"renormalize": bool(c.norm_topk_prob)},
    "granitemoeshared": lambda c, e: {"sharedExpert.gated": False},  # its shared_mlp, found by name
}

# inspect --json routers per (family, exporter), for the exporters-agree test below.
INSPECTED: dict[tuple[str, str], list[dict]] = {}

MODEL_TYPES = [(mt, cls) for mt, cls in tm.moe_model_types() if ALL or mt in FAMILIES]


class _BatchedExperts(torch.nn.Module):
    """The same experts, same weights, computed as transformers' batched_mm does (gather each selected expert's
    weights, one batched matmul, weight, sum over k) instead of an eager per-expert loop, which the TorchScript
    exporter bakes into the graph for the trace's inputs (DBRX, DeepSeek-V2 have no batched_mm of their own)."""

    def __init__(self, ex: torch.nn.Module, model_type: str) -> None:
        super().__init__()
        self.ex = ex  # the original module: its parameters stay parameters (initializers in the export)
        self.dbrx = model_type == "dbrx"

    def _weights(self):  # type: ignore[no-untyped-def]
        ex = self.ex
        if self.dbrx:
            E, I, H = ex.num_experts, ex.ffn_hidden_size, ex.hidden_size
            return ex.mlp.w1.view(E, I, H), ex.mlp.v1.view(E, I, H), ex.mlp.w2.view(E, I, H).transpose(1, 2), ex.mlp.activation_fn
        gate, up = ex.gate_up_proj.chunk(2, dim=1)  # DeepSeek-V2: gate_up_proj [E, 2I, H], down_proj [E, H, I]
        return gate, up, ex.down_proj, ex.act_fn

    def forward(self, hidden_states, top_k_index, top_k_weights):  # type: ignore[no-untyped-def]
        gate, up, down, act = self._weights()
        H = hidden_states.shape[-1]
        x = hidden_states.reshape(-1, H)
        T, K = top_k_index.shape
        ids = top_k_index.reshape(-1)
        xs = x.repeat_interleave(K, dim=0).unsqueeze(-1)  # [T·K, H, 1]
        inter = act(torch.bmm(gate[ids], xs)) * torch.bmm(up[ids], xs)  # [T·K, I, 1]
        out = torch.bmm(down[ids], inter).squeeze(-1)  # [T·K, H]
        out = (out * top_k_weights.reshape(-1, 1)).view(T, K, H).sum(dim=1)
        return out.view(hidden_states.shape)


# Families whose experts are an eager per-expert loop: exported with _BatchedExperts (the "-eager" case keeps the
# loop, whose TorchScript export the engine cannot follow to the mixing and must say so).
EAGER_EXPERTS = {"dbrx", "deepseek_v2"}


class _MoeStack(torch.nn.Module):
    """Embedding → each MoE block of the model (residual) → head: the HF router and experts classes without the
    attention, for families whose attention the exporters cannot take."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.embed = model.get_input_embeddings()
        blocks = [m for _, m in model.named_modules() if isinstance(getattr(m, "experts", None), torch.nn.Module)]
        self.blocks = torch.nn.ModuleList(blocks)
        self.head = model.get_output_embeddings()

    def forward(self, input_ids, attention_mask=None, position_ids=None, **_: object):  # type: ignore[no-untyped-def]
        h = self.embed(input_ids)
        for b in self.blocks:
            o = b(h)
            o = o[0] if isinstance(o, tuple) else o
            h = h + o.reshape(h.shape)
        return self.head(h)


class _Flat(torch.nn.Module):
    """input_ids, attention_mask, position_ids → logits, as Optimum exports take them."""

    def __init__(self, m: torch.nn.Module) -> None:
        super().__init__()
        self.m = m

    def forward(self, input_ids, attention_mask, position_ids):  # type: ignore[no-untyped-def]
        if isinstance(self.m, _MoeStack):
            return self.m(input_ids)
        out = self.m(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, use_cache=False)
        return out.logits if hasattr(out, "logits") else out.last_hidden_state


def spread_routers(model: torch.nn.Module) -> None:
    """Random init leaves router logits near-tied (or zero), and then the top-k is decided by float noise: redraw the
    gate weights (std 0.25) and selection biases (std 0.3) so the reference selection is unambiguous."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, mod in model.named_modules():
            last = name.rsplit(".", 1)[-1]
            w = getattr(mod, "weight", None)
            if last in ("gate", "router", "wg", "layer") and isinstance(w, torch.Tensor) and w.dim() == 2 and tm.EXPERTS in w.shape:
                w.copy_(torch.randn(w.shape, generator=g) * 0.25)
        for name, t in [*model.named_parameters(), *model.named_buffers()]:
            if re.search(r"(e_score_correction_bias|expert_bias)$", name) and t.is_floating_point():
                t.copy_(torch.randn(t.shape, generator=g) * 0.3)


class _dbrx_rope_theta:
    """transformers 5.18's DbrxAttention reads attn_config.rope_theta, which DbrxAttentionConfig no longer has (it
    moved to rope_parameters): give the class a default for the duration of one build, so DBRX (L1-renormalised
    weights) can be tested at all."""

    def __enter__(self) -> None:
        try:
            from transformers.models.dbrx import configuration_dbrx as c
        except ImportError:
            self.cls = None
            return
        self.cls = c.DbrxAttentionConfig
        self.had = "rope_theta" in vars(self.cls)
        if not self.had:
            self.cls.rope_theta = 10000.0

    def __exit__(self, *exc: object) -> None:
        if self.cls is not None and not self.had:
            del self.cls.rope_theta


def export(model: torch.nn.Module, path: Path, dynamo: bool) -> None:
    ids = torch.randint(3, tm.VOCAB, (2, 8), generator=torch.Generator().manual_seed(0))
    args = (ids, torch.ones_like(ids), torch.arange(8)[None].expand(2, -1).contiguous())
    names = ["input_ids", "attention_mask", "position_ids"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            B = torch.export.Dim("batch", min=1, max=64)
            S = torch.export.Dim("sequence", min=1, max=4096)
            ds = {n: {0: B, 1: S} for n in names}
            prog = torch.onnx.export(_Flat(model), args, dynamo=True, input_names=names, output_names=["logits"],
                                     dynamic_shapes=ds, opset_version=18, optimize=True, verbose=False)
            prog.save(str(path))
        else:
            dyn = {n: {0: "batch", 1: "sequence"} for n in [*names, "logits"]}
            torch.onnx.export(_Flat(model), args, str(path), dynamo=False, input_names=names, output_names=["logits"],
                              dynamic_axes=dyn, opset_version=18, do_constant_folding=True)


def _cases() -> list[tuple[str, type, str]]:
    out = []
    for mt, cls in MODEL_TYPES:
        out.append((mt, cls, "torchscript"))
        if mt == "dbrx":
            out.append((mt, cls, "torchscript-eager"))
        if mt in DYNAMO:
            out.append((mt, cls, "dynamo"))
    return out


CASES = _cases()


@pytest.mark.parametrize("model_type,cls,exporter", CASES, ids=[f"{mt}-{e}" for mt, _, e in CASES])
def test_onnx_export_routing_equals_pytorch(model_type: str, cls: type, exporter: str, tmp_path: Path) -> None:
    if exporter == "dynamo" and not HAVE_DYNAMO:
        pytest.skip("the dynamo exporter needs onnxscript")
    with _dbrx_rope_theta():
        built = tm.build(model_type, cls)
    if built.model is None:
        assert model_type not in REQUIRED, built.error
        pytest.skip(f"no tiny {model_type}: {built.error}")
    model = built.model
    if getattr(model.config, "shared_intermediate_size", None) == 0:  # GraniteMoeShared: give it its shared_mlp
        model.config.shared_intermediate_size = 32
        torch.manual_seed(0)
        model = built.model = type(model)(model.config).eval()
    for m in model.modules():  # DBRX: clip_qkv None reaches torch.clamp(min=None, max=None) in 5.18
        if model_type == "dbrx" and hasattr(m, "clip_qkv") and m.clip_qkv is None:
            m.clip_qkv = 8.0
    if model_type in EAGER_EXPERTS and exporter != "torchscript-eager":
        for name, m in list(model.named_modules()):
            ex = getattr(m, "experts", None)
            if isinstance(ex, torch.nn.Module) and not isinstance(ex, _BatchedExperts):
                m.experts = _BatchedExperts(ex, model_type)
    if model_type == "deepseek_v2":  # DeepSeek-V2's group-limited greedy: groups scored by their max
        for m in model.modules():
            if hasattr(m, "topk_method"):
                m.topk_method = "group_limited_greedy"
    if model_type in MOE_ONLY:
        model = _MoeStack(model).eval()
    if getattr(model, "_can_set_experts_implementation", lambda: False)():
        model.set_experts_implementation("batched_mm")  # the default grouped_mm does not export
    spread_routers(model)
    out_dir = Path(KEEP) if KEEP else tmp_path
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{model_type}-{exporter}.onnx"
    try:
        export(model, path, exporter == "dynamo")
    except Exception as e:
        assert model_type not in REQUIRED, e
        pytest.skip(f"torch cannot export tiny {model_type} ({exporter}): {type(e).__name__}: {str(e).splitlines()[0][:150] if str(e) else ''}")

    # PyTorch's own routing for the same inputs, one sequence per forward pass; routers in the order they run
    # (the graph's order: JetMoE registers its MLP before its attention but runs the attention first).
    ref = Reference(model, tm.EXPERTS)
    ran: dict[str, int] = {}
    def first_call(name: str):  # type: ignore[no-untyped-def]
        def hook(module, args) -> None:  # type: ignore[no-untyped-def]
            ran.setdefault(name, len(ran))
        return hook

    order_hooks = [m.register_forward_pre_hook(first_call(n)) for n, m in model.named_modules()]
    with torch.no_grad():
        for s in INPUTS:
            t = torch.tensor([s])
            if isinstance(model, _MoeStack):
                model(t)
            else:
                model(input_ids=t, attention_mask=torch.ones_like(t), position_ids=torch.arange(len(s))[None], use_cache=False)
    ref.close()
    for h in order_hooks:
        h.remove()
    routed = sorted((layer for layer in ref.layers if layer.ids), key=lambda layer: ran.get(layer.name, len(ran)))
    if not routed:
        assert model_type not in REQUIRED
        pytest.skip(f"{model_type}: the tiny model routes no token through a top-k router the hooks see")

    ins = subprocess.run(["node", str(CLI), "inspect", str(path), "--json"], capture_output=True, text=True, timeout=120)
    assert ins.returncode == 0, ins.stderr
    INSPECTED[(model_type, exporter)] = json.loads(ins.stdout)["routers"]
    want_fields = EXPECTED.get(model_type, lambda c, e: {})(built.model.config, exporter)
    for r in INSPECTED[(model_type, exporter)]:
        for key, want in want_fields.items():
            got = r
            for part in key.split("."):
                got = got[part] if isinstance(got, dict) else None
            assert got == want, f"{model_type} ({exporter}) layer {r['layer']}: inspect says {key} = {got!r}, the model has {want!r}"

    # Each router's identity — its layer and what it routes — is the PyTorch module's (JetMoE: an attention and an
    # MLP router in every layer).
    for r, layer in zip(INSPECTED[(model_type, exporter)], routed):
        m = re.search(r"(?:layers|blocks|h)\.(\d+)\.", layer.name)
        if m:
            assert r["identity"]["layer"] == int(m.group(1)), f"{layer.name}: identity {r['identity']}"
        assert r["identity"]["role"] == ("attention" if "attention" in layer.name or ".attn" in layer.name else "mlp"), f"{layer.name}: identity {r['identity']}"

    summary: list[str] = []
    for i, s in enumerate(INPUTS):
        trace = tmp_path / f"t{i}.arrows"
        p = subprocess.run(["node", str(CLI), "run", str(path), "--input-ids", ",".join(map(str, s)), "--max-tokens", "0",
                            "--record", str(trace), "--no-ui"], capture_output=True, text=True, timeout=120)
        if p.returncode != 0 and ("onnxruntime could not load" in p.stderr or "onnxruntime failed running" in p.stderr and "moescope/" not in p.stderr):
            assert model_type not in REQUIRED, p.stderr
            pytest.skip(f"onnxruntime cannot load the {exporter} export of {model_type}: {p.stderr.strip()[:200]}")
        assert p.returncode == 0, p.stderr
        with pa.ipc.open_stream(str(trace)) as r:
            t = r.read_all()
        meta = json.loads(t.schema.metadata[b"moescope"])
        routers = meta["meta"]["routers"]
        L, K = len(routers), routers[0]["topK"]
        assert L == len(routed), f"{L} routers found, PyTorch routed through {len(routed)}: {[l.name for l in routed]}"
        got_ids = t.column("experts").combine_chunks().values.to_numpy().reshape(-1, L, K)
        got_w = t.column("weights").combine_chunks().values.to_numpy(zero_copy_only=False).reshape(-1, L, K)
        assert got_ids.shape[0] == len(s)
        for l, (layer, router) in enumerate(zip(routed, routers)):
            want = layer.ids[i]
            assert want.shape == (len(s), K), f"{layer.name}: reference {want.shape}, trace top-{K}"
            got = got_ids[:, l, :].astype(np.int64)
            assert np.array_equal(np.sort(got, 1), np.sort(want, 1)), f"{layer.name}: top-k sets differ in {int((np.sort(got, 1) != np.sort(want, 1)).any(1).sum())}/{len(s)} tokens"
            ww = layer.weights[i]
            if router.get("mixing") == "not-followed":
                assert np.isnan(got_w[:, l, :]).all(), f"{layer.name}: weights recorded although not followed"
                assert router.get("mixingNote"), f"{layer.name}: not followed, without saying why"
                summary.append(f"L{router['layer']} not-followed ({router['mixingNote']})")
                continue
            assert router.get("mixing") == "followed", router
            assert ww is not None, f"{layer.name}: the hooks saw no weights"
            # per expert: the weight recorded for expert e equals the weight PyTorch gave expert e, to float16
            # precision (the trace stores float16: within one float16 step of PyTorch's float32 value)
            g = np.take_along_axis(got_w[:, l, :], np.argsort(got, 1), 1).astype(np.float32)
            w = np.take_along_axis(ww, np.argsort(want, 1), 1).astype(np.float32)
            bad = int((np.abs(g - w) > np.abs(w) * 2.0**-10 + 1e-6).any(1).sum())
            assert bad == 0, f"{layer.name}: weights differ beyond float16 precision in {bad}/{len(s)} tokens (max |diff| {float(np.abs(g - w).max()):.3g})"
            summary.append(f"L{router['layer']} {router['kind']}")
    if KEEP:
        with open(Path(KEEP) / "summary.txt", "a") as f:
            f.write(f"{model_type} {exporter}: {'; '.join(summary[: len(routed)])}\n")


SAME_ACROSS_EXPORTERS = ("layer", "experts", "topK", "scoring", "kind", "renormalize", "scalingFactor", "groups")


def test_torchscript_and_dynamo_exports_of_one_model_report_the_same_router() -> None:
    """What inspect says about a router is the model's, not the exporter's: scoring, renormalisation, scaling factor
    (TorchScript keeps a Mul by 1.0 that dynamo folds), groups and kind agree between the two exports."""
    pairs = [mt for (mt, e) in INSPECTED if e == "dynamo" and (mt, "torchscript") in INSPECTED]
    if not pairs:
        pytest.skip("no family was exported by both exporters in this run")
    for mt in pairs:
        a, b = INSPECTED[(mt, "torchscript")], INSPECTED[(mt, "dynamo")]
        assert len(a) == len(b), mt
        for ra, rb in zip(a, b):
            for f in SAME_ACROSS_EXPORTERS:
                assert ra[f] == rb[f], f"{mt} layer {ra['layer']}: {f} is {ra[f]!r} (TorchScript) but {rb[f]!r} (dynamo)"
            assert (ra["bias"] is None) == (rb["bias"] is None), f"{mt}: bias {ra['bias']!r} vs {rb['bias']!r}"
            assert ra["mixing"]["status"] == rb["mixing"]["status"], mt
