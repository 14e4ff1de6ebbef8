"""Qwen2-Audio models: load a checkpoint, build the offline tiny model, wrap with LoRA."""

from apa.models.checkpoint import LoadedModel, ModelSource, Qwen2AudioCheckpoint
from apa.models.lora import apply_lora, lora_modules, parameter_counts
from apa.models.mini import MiniQwen2Audio
from apa.models.tiny import TinyQwen2Audio
from apa.models.tokenizer import qwen2_audio_tokenizer

__all__ = [
    "LoadedModel",
    "MiniQwen2Audio",
    "ModelSource",
    "Qwen2AudioCheckpoint",
    "TinyQwen2Audio",
    "apply_lora",
    "lora_modules",
    "parameter_counts",
    "qwen2_audio_tokenizer",
]
