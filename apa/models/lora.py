"""LoRA adapters on Qwen2-Audio through PEFT.

``conf/lora/*.yaml`` instantiates a ``peft.LoraConfig`` directly. Its ``target_modules`` is a
regex over module names because a plain list such as ``["q_proj", "v_proj"]`` also matches the
Whisper audio tower's attention; the default adapts only the language model's projections.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from peft import LoraConfig, PeftModel, get_peft_model
from peft.tuners.lora import LoraLayer
from peft.tuners.tuners_utils import BaseTunerLayer
from torch import nn
from transformers import PreTrainedModel

from apa.models.quantization import is_quantized

log = logging.getLogger(__name__)

COMPONENTS = ("audio_tower", "multi_modal_projector", "language_model", "lm_head")


def component_of(module_name: str) -> str:
    """Which part of Qwen2-Audio a (possibly PEFT-prefixed) module name belongs to."""
    parts = module_name.split(".")
    return next((part for part in parts if part in COMPONENTS), "other")


def lora_modules(model: nn.Module) -> list[str]:
    """Names of the modules that carry a LoRA adapter."""
    return [name for name, module in model.named_modules() if isinstance(module, LoraLayer)]


def parameter_counts(model: nn.Module) -> dict[str, int]:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"parameters/total": total, "parameters/trainable": trainable}


def adapter_config(lora: LoraConfig, model: PreTrainedModel, score_ids: list[int], modules: list[str]) -> LoraConfig:
    """The configured LoRA plus what the job adds: the score-token rows (input embeddings, and the
    LM head unless tied to them) and modules trained in full, such as a regression head."""
    changes: dict[str, Any] = {}
    if score_ids:
        tied = model.get_output_embeddings().weight is model.get_input_embeddings().weight
        changes["trainable_token_indices"] = {"embed_tokens": score_ids, **({} if tied else {"lm_head": score_ids})}
    if modules:
        changes["modules_to_save"] = sorted({*(lora.modules_to_save or []), *modules})
    return dataclasses.replace(lora, **changes)


def apply_lora(model: nn.Module, config: LoraConfig) -> PeftModel:
    """Freeze ``model`` and attach the adapters ``config`` describes; logs where they landed."""
    peft_model = get_peft_model(model, config)
    placement = Counter(component_of(name) for name in lora_modules(peft_model))
    counts = parameter_counts(peft_model)
    log.info(
        "LoRA r=%d on %s; %s of %s parameters trainable (%.2f%%)",
        config.r,
        ", ".join(f"{n} modules in {c}" for c, n in sorted(placement.items())),
        f"{counts['parameters/trainable']:,}",
        f"{counts['parameters/total']:,}",
        100 * counts["parameters/trainable"] / counts["parameters/total"],
    )
    return peft_model


@contextmanager
def merged_adapter(model: nn.Module) -> Iterator[nn.Module]:
    """``model`` with its adapters folded into the base weights while inside, unfolded on the way
    out (PEFT's ``merge_adapter`` / ``unmerge_adapter``, as TRL generates with during training).
    Decoding then costs one product per adapted layer instead of three: 210 fewer small products
    per generated token on ``mini``. A model without adapters, already merged, or whose base weights
    are quantised (merging would round them again: apa.models.quantization) is left as it is."""
    merged = any(m.merged for m in model.modules() if isinstance(m, BaseTunerLayer))
    if not isinstance(model, PeftModel) or merged or is_quantized(model):
        yield model
        return
    model.merge_adapter()
    try:
        yield model
    finally:
        model.unmerge_adapter()
