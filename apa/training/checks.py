"""Settings that would fail (or train nothing) only after the model is loaded and the caches are
built, refused at once: on the 7B model each such mistake costs minutes."""

from __future__ import annotations

from collections.abc import Mapping
from numbers import Real
from typing import Any

from peft import LoraConfig


def _is_number(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def lora_problems(lora: LoraConfig) -> list[str]:
    problems = []
    if not isinstance(lora.r, int) or isinstance(lora.r, bool) or lora.r < 1:
        problems.append(f"lora.r={lora.r!r}: expected the adapter's rank, a whole number of at least 1")
    if not _is_number(lora.lora_alpha) or lora.lora_alpha <= 0:
        problems.append(f"lora.lora_alpha={lora.lora_alpha!r}: expected a positive number (0 switches LoRA off)")
    if not _is_number(lora.lora_dropout) or not 0 <= lora.lora_dropout < 1:
        problems.append(f"lora.lora_dropout={lora.lora_dropout!r}: expected a probability in [0, 1)")
    return problems


def training_problems(arguments: Mapping[str, Any]) -> list[str]:
    problems = []
    rate = arguments.get("learning_rate", 1)
    if not _is_number(rate) or rate <= 0:
        problems.append(f"trainer.arguments.learning_rate={rate!r}: expected a positive number (e.g. 1e-4)")
    for name in ("per_device_train_batch_size", "gradient_accumulation_steps"):
        value = arguments.get(name, 1)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            problems.append(f"trainer.arguments.{name}={value!r}: expected a whole number of at least 1")
    return problems


def check_settings(lora: LoraConfig, arguments: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` listing every bad LoRA or training setting, before anything is loaded."""
    problems = lora_problems(lora) + training_problems(arguments)
    if problems:
        raise ValueError("bad settings:\n  " + "\n  ".join(problems))
