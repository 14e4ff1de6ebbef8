"""apa: automatic pronunciation assessment by fine-tuning Qwen2-Audio with LoRA."""

__version__ = "0.1.0"

from apa.quiet import quieten_import_loggers

quieten_import_loggers()
