"""Qwen2-Audio models: load a checkpoint, wrap it with LoRA (the offline development models are in
:mod:`apa.models.offline`)."""

from apa.models.checkpoint import LoadedModel, ModelSource, Qwen2AudioCheckpoint
from apa.models.lora import adapter_config, apply_lora, lora_modules, parameter_counts

__all__ = [
    "LoadedModel",
    "ModelSource",
    "Qwen2AudioCheckpoint",
    "adapter_config",
    "apply_lora",
    "lora_modules",
    "parameter_counts",
]
