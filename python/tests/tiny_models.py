"""Tiny random-weight instances of every Mixture-of-Experts model class the installed transformers ships.

The classes are found programmatically: every config class of transformers' auto mapping whose default config
(or text sub-config) declares an expert count (num_experts, num_local_experts, n_routed_experts, …). Each is
shrunk to hidden ≤ 64, 2 layers, 8 experts, top-2 by passing small values for the constructor arguments it has.
Models that cannot be built or run this way are reported by the caller (with the error), not hidden.
"""
from __future__ import annotations

import inspect
import warnings
from dataclasses import dataclass
from typing import Any, Optional

import torch
import transformers
from transformers.models.auto import configuration_auto, modeling_auto

EXPERT_KEYS = ("num_experts", "num_local_experts", "n_routed_experts", "moe_num_experts", "num_moe_experts")
TOPK_KEYS = ("num_experts_per_tok", "moe_topk", "top_k", "moe_k", "num_experts_per_token", "router_topk")
EXPERTS = 8
TOP_K = 2
HIDDEN = 64
VOCAB = 128

SMALL: dict[str, Any] = {
    "hidden_size": HIDDEN,
    "d_model": HIDDEN,
    "intermediate_size": 64,
    "moe_intermediate_size": 32,
    "expert_intermediate_size": 32,
    "shared_expert_intermediate_size": 32,
    "ffn_hidden_size": 64,
    "num_hidden_layers": 2,
    "num_layers": 2,
    "n_layers": 2,
    "num_attention_heads": 4,
    "n_heads": 4,
    "num_key_value_heads": 4,
    "head_dim": 16,
    "vocab_size": VOCAB,
    "max_position_embeddings": 256,
    "n_group": 2,
    "topk_group": 1,
    "first_k_dense_replace": 0,
    "decoder_sparse_step": 1,
    "moe_layer_freq": 1,
    "mlp_only_layers": [],
    "kv_lora_rank": 16,
    "q_lora_rank": 32,
    "qk_rope_head_dim": 16,
    "qk_nope_head_dim": 16,
    "v_head_dim": 16,
    "num_shared_experts": 1,
    "zero_expert_num": 2,
    "attn_layer_period": 2,  # Jamba: layer 1 attention, layer 0 mamba; both MoE
    "attn_layer_offset": 1,
    "expert_layer_period": 1,
    "expert_layer_offset": 0,  # LongCat-Flash: routed over E + 2 identity ("zero-computation") experts
    "n_shared_experts": 1,
    "sliding_window": 64,
    "pad_token_id": 0,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "tie_word_embeddings": False,
    "use_cache": True,
    "output_router_logits": False,
    "router_jitter_noise": 0.0,
    "attn_implementation": "eager",
}


@dataclass
class TinyModel:
    model_type: str
    config_class: str
    model: Optional[torch.nn.Module]
    error: Optional[str]
    causal_lm: bool


def moe_model_types() -> list[tuple[str, type]]:
    """(model_type, config class) of every config declaring experts."""
    out: list[tuple[str, type]] = []
    seen: set[type] = set()  # multimodal wrappers and their text configs build the same text model: once
    for model_type in sorted(configuration_auto.CONFIG_MAPPING_NAMES):
        try:
            cls = configuration_auto.CONFIG_MAPPING[model_type]
        except Exception:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                cfg = cls()
            except Exception:
                continue
        effective = cls if _declares_experts(cfg) else type(_text_config(cfg)) if _declares_experts(_text_config(cfg)) else None
        if effective is not None and effective not in seen:
            seen.add(effective)
            out.append((model_type, cls))
    return out


def _text_config(cfg: Any) -> Any:
    for key in ("text_config", "thinker_config", "language_config", "llm_config"):
        sub = getattr(cfg, key, None)
        if sub is not None and hasattr(sub, "to_dict"):
            return sub
    return None


def _declares_experts(cfg: Any) -> bool:
    if cfg is None:
        return False
    d = cfg.to_dict() if hasattr(cfg, "to_dict") else {}
    if any(isinstance(v, dict) and k not in ("text_config", "vision_config") and _declares_experts_dict(v) for k, v in d.items()):
        return True  # DBRX: ffn_config.moe_num_experts
    for k in EXPERT_KEYS:
        v = d.get(k)
        if isinstance(v, int) and not isinstance(v, bool) and v >= 2:
            return True
    return False


def _overrides(cls: type, defaults: dict[str, Any]) -> dict[str, Any]:
    params = set(inspect.signature(cls.__init__).parameters) | set(defaults)
    kw = {k: v for k, v in SMALL.items() if k in params}
    for k in EXPERT_KEYS:
        if k in params:
            kw[k] = EXPERTS
    for k in TOPK_KEYS:
        if k in params and (isinstance(defaults.get(k), int) or defaults.get(k) is None):
            kw[k] = TOP_K
    for key, sub in defaults.items():  # nested MoE settings (DBRX's ffn_config)
        if isinstance(sub, dict) and key not in ("text_config", "vision_config") and _declares_experts_dict(sub):
            small = {k: EXPERTS for k in EXPERT_KEYS if k in sub}
            small.update({k: TOP_K for k in (*TOPK_KEYS, "moe_top_k") if k in sub})
            small.update({k: 32 for k in ("ffn_hidden_size",) if k in sub})
            kw[key] = small
    lt = defaults.get("layer_types")
    if isinstance(lt, list) and lt:  # keep one layer of each of the first two kinds (hybrid attention / mamba)
        other = next((t for t in lt if t != lt[0]), lt[0])
        kw["layer_types"] = [lt[0], other]
    return kw


def build(model_type: str, cls: type) -> TinyModel:
    """A tiny model of this type on the CPU, in eval mode, or the reason it could not be built."""
    torch.manual_seed(0)
    causal = model_type in modeling_auto.MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            defaults = cls().to_dict()
            kw = _overrides(cls, defaults)
            text_key = next((k for k in ("text_config",) if isinstance(defaults.get(k), dict)), None)
            if text_key is not None and not _declares_experts_dict(defaults):
                sub_cls = type(getattr(cls(), text_key))
                sub = sub_cls(**_overrides(sub_cls, defaults[text_key]))
                cfg = sub
                model_type = getattr(sub, "model_type", model_type)
                causal = model_type in modeling_auto.MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
            else:
                cfg = cls(**kw)
            if hasattr(cfg, "_attn_implementation"):
                cfg._attn_implementation = "eager"
            model = _model_for(cfg, causal)
        model.eval()
        return TinyModel(model_type, cls.__name__, model, None, causal)
    except Exception as e:  # reported by the test as "not built", with the reason
        return TinyModel(model_type, cls.__name__, None, f"{type(e).__name__}: {str(e).splitlines()[0][:200]}", causal)


def _declares_experts_dict(d: dict[str, Any]) -> bool:
    return any(isinstance(d.get(k), int) and not isinstance(d.get(k), bool) and d[k] >= 2 for k in EXPERT_KEYS)


def _model_for(cfg: Any, causal: bool) -> torch.nn.Module:
    """The causal-LM (else base) model class of this config: the auto mapping, else the class of the config's own
    module whose config_class it is (text sub-configs of multimodal models)."""
    try:
        auto = transformers.AutoModelForCausalLM if causal else transformers.AutoModel
        return auto.from_config(cfg)
    except ValueError:
        pass
    import importlib

    module = importlib.import_module(type(cfg).__module__.replace(".configuration_", ".modeling_"))
    found = [
        obj
        for obj in vars(module).values()
        if isinstance(obj, type) and issubclass(obj, transformers.PreTrainedModel) and getattr(obj, "config_class", None) is type(cfg)
    ]
    found.sort(key=lambda c: (not c.__name__.endswith("ForCausalLM"), not c.__name__.endswith("Model"), c.__name__))
    if not found:
        raise ValueError(f"no model class for {type(cfg).__name__}")
    return found[0](cfg)
