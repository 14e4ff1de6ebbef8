"""Load a Qwen2-Audio checkpoint (a hub id or a local folder) with its processor.

Every model config in ``conf/model/`` instantiates a cheap *source* whose ``load()`` does the
expensive part, so configs can be composed, validated and swept without touching weights.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol, runtime_checkable

import torch
from transformers import AutoProcessor, ProcessorMixin, Qwen2AudioForConditionalGeneration

from apa.models.quantization import quantization_config

log = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class LoadedModel(NamedTuple):
    model: Qwen2AudioForConditionalGeneration
    processor: ProcessorMixin


@runtime_checkable
class ModelSource(Protocol):
    """What every ``conf/model`` entry instantiates."""

    modules_to_save: Sequence[str]  # parts that must train in full with the adapter (an untrained projector)

    def load(self) -> LoadedModel: ...


def resolve_device(device: str) -> torch.device:
    """``auto`` is this process's GPU (``LOCAL_RANK`` under torchrun/accelerate) or the CPU."""
    if device != "auto":
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device("cpu")


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """``auto`` is bfloat16 on a GPU that supports it (as the papers trained) and float32 elsewhere."""
    if dtype == "auto":
        bf16_ok = device.type == "cuda" and torch.cuda.is_bf16_supported()
        return torch.bfloat16 if bf16_ok else torch.float32
    if dtype not in DTYPES:
        raise ValueError(f"model.dtype={dtype!r} is not one of auto, {', '.join(DTYPES)}")
    return DTYPES[dtype]


@dataclass(frozen=True)
class Qwen2AudioCheckpoint:
    """A Qwen2-Audio checkpoint: ``Qwen/Qwen2-Audio-7B-Instruct`` or a local ``save_pretrained`` folder.

    ``trust_remote_code`` stays off by default: transformers implements Qwen2-Audio natively.
    """

    name_or_path: str
    revision: str | None = None
    dtype: str = "auto"
    device: str = "auto"
    attn_implementation: str | None = None
    local_files_only: bool = False
    trust_remote_code: bool = False
    modules_to_save: Sequence[str] = ()
    quantization: str | None = None  # 4bit or 8bit: the language model's weights (apa.models.quantization)

    def load(self) -> LoadedModel:
        device = resolve_device(self.device)
        dtype = resolve_dtype(self.dtype, device)
        common = dict(
            revision=self.revision,
            local_files_only=self.local_files_only,
            trust_remote_code=self.trust_remote_code,
        )
        model = Qwen2AudioForConditionalGeneration.from_pretrained(
            self.name_or_path,
            dtype=dtype,
            device_map=str(device),
            attn_implementation=self.attn_implementation,
            quantization_config=quantization_config(self.quantization, dtype),
            **common,
        )
        processor = AutoProcessor.from_pretrained(self.name_or_path, **common)
        share_chat_template(processor, self.name_or_path)
        return LoadedModel(model, processor)


def share_chat_template(processor: ProcessorMixin, source: str) -> None:
    """Give the tokenizer and the processor the same chat template, from wherever the checkpoint
    keeps it. apa encodes with the tokenizer's template, but a checkpoint may keep it at processor
    level only (``chat_template.json``), which ``AutoProcessor`` puts on the processor alone. The
    tokenizer's (``tokenizer_config.json``, or ``chat_template.jinja`` read by both) wins when both
    have one: a Qwen2-Audio processor always has one, transformers' built-in default when the
    checkpoint gives none, and that default is used (with a warning) only when nothing else is there."""
    tokenizer = processor.tokenizer
    template = tokenizer.chat_template or processor.chat_template
    if not template:
        raise ValueError(
            f"{source}: the checkpoint has no chat template (none in chat_template.json, chat_template.jinja "
            "or tokenizer_config.json); apa needs one to build its prompts"
        )
    if not tokenizer.chat_template and template == getattr(processor, "default_chat_template", None):
        log.warning("%s: the checkpoint has no chat template; using transformers' default for Qwen2-Audio", source)
    processor.chat_template = tokenizer.chat_template = template
