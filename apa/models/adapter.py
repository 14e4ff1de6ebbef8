"""Load a trained adapter onto its base model, rebuilding what training added first."""

from __future__ import annotations

import json
from pathlib import Path

from peft import PeftModel
from transformers import PreTrainedModel, ProcessorMixin

from apa.models.heads import attach_head, load_head_spec
from apa.models.score_tokens import add_score_tokens
from apa.prompts.vocabulary import ScoreVocabulary
from apa.runs import ADAPTER_CONFIG


def load_adapter(
    model: PreTrainedModel, processor: ProcessorMixin, folder: Path, vocabulary: ScoreVocabulary
) -> PeftModel:
    """The base model with the score tokens installed as in training (same initial rows), the
    regression head if the adapter has one, and the adapter's trained weights on top."""
    if not (folder / ADAPTER_CONFIG).is_file():
        raise FileNotFoundError(f"{folder}: no adapter here (expected {ADAPTER_CONFIG} from a training run)")
    add_score_tokens(model, processor.tokenizer, vocabulary)
    head = load_head_spec(folder)
    if head is not None:
        attach_head(model, head)
    try:
        return PeftModel.from_pretrained(model, str(folder))
    except (IndexError, KeyError, RuntimeError, ValueError) as error:  # PEFT's ways of saying "shapes differ"
        raise AdapterError(
            f"{folder}: the adapter does not fit this base model ({type(error).__name__}: {error}); it was "
            f"trained on {trained_on(folder)!r}: load it onto that model (the run's config.yaml names it)"
        ) from error


class AdapterError(ValueError):
    """An adapter that cannot be loaded onto the base model it was given."""


def trained_on(folder: Path) -> str:
    """The base model an adapter names in its ``adapter_config.json`` (PEFT records it)."""
    try:
        return str(json.loads((folder / ADAPTER_CONFIG).read_text())["base_model_name_or_path"])
    except (OSError, ValueError, KeyError, TypeError):
        return "an unrecorded model"
