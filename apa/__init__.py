"""apa: automatic pronunciation assessment by fine-tuning Qwen2-Audio with LoRA."""

__version__ = "0.1.0"
