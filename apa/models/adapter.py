"""Load a trained adapter onto its base model, rebuilding what training added first."""

from __future__ import annotations

from pathlib import Path

from peft import PeftModel
from transformers import PreTrainedModel, ProcessorMixin

from apa.models.heads import attach_head, load_head_spec
from apa.models.score_tokens import add_score_tokens
from apa.prompts.vocabulary import ScoreVocabulary


def load_adapter(
    model: PreTrainedModel, processor: ProcessorMixin, folder: Path, vocabulary: ScoreVocabulary
) -> PeftModel:
    """The base model with the score tokens installed as in training (same initial rows), the
    regression head if the adapter has one, and the adapter's trained weights on top."""
    if not (folder / "adapter_config.json").is_file():
        raise FileNotFoundError(f"{folder}: no adapter here (expected adapter_config.json from a training run)")
    add_score_tokens(model, processor.tokenizer, vocabulary)
    head = load_head_spec(folder)
    if head is not None:
        attach_head(model, head)
    return PeftModel.from_pretrained(model, str(folder))
