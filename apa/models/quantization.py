"""Base weights in 4 or 8 bits under the LoRA adapters (QLoRA, Dettmers et al. 2023), through
bitsandbytes as transformers loads them.

``model.quantization=4bit`` stores the language model's linear layers as NF4 with double
quantisation and computes in the model's dtype (bf16 on a GPU); ``8bit`` as LLM.int8(). The audio
tower, the projector and the LM head keep the model's dtype: the tower is a third of the 7B's
compute but a tenth of its weights, and the projector and the score-token rows train. LoRA's own
weights train in full precision on top. An adapter is never merged into quantised weights
(rounding them again would change the model it was trained as): decoding reads it unmerged.
"""

from __future__ import annotations

from importlib.util import find_spec

import torch
from torch import nn
from transformers import BitsAndBytesConfig

QUANTIZATIONS = ("4bit", "8bit")
# Modules left unquantised, as transformers matches them (from the start of a module's name, or a regex).
KEPT_IN_DTYPE = (r".*audio_tower", r".*multi_modal_projector", "lm_head")


def quantization_config(quantization: str | None, compute_dtype: torch.dtype) -> BitsAndBytesConfig | None:
    """transformers' config for ``model.quantization`` (None: the weights as stored)."""
    if quantization is None:
        return None
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"model.quantization={quantization!r} is not one of {', '.join(QUANTIZATIONS)} (or null)")
    if find_spec("bitsandbytes") is None:
        raise ImportError(
            f"model.quantization={quantization} needs bitsandbytes: pip install 'apa[quantization]' "
            "(or pip install bitsandbytes)"
        )
    if quantization == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=list(KEPT_IN_DTYPE))
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=compute_dtype,
        llm_int8_skip_modules=list(KEPT_IN_DTYPE),
    )


def is_quantized(model: nn.Module) -> bool:
    """Whether ``model`` (or the base model under its adapters) was loaded in 4 or 8 bits."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return bool(getattr(base, "is_loaded_in_4bit", False) or getattr(base, "is_loaded_in_8bit", False))
