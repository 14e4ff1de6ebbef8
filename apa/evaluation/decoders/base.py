"""What every decoding strategy shares: the items decoded, the batches, the predictions, and the
:class:`Decoder` base class whose ``predict`` decodes every chunk and averages the chunks."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn
from tqdm.auto import tqdm
from transformers import ProcessorMixin

from apa.data.features import ChunkFeatures, FeatureTable
from apa.data.records import Scores, Utterance
from apa.evaluation.chunks import average
from apa.models.batching import Collator
from apa.models.encoding import Encoded, PromptEncoder
from apa.models.lora import merged_adapter
from apa.prompts import Prompt
from apa.prompts.slots import blank


@dataclass(frozen=True)
class Prediction:
    scores: Scores
    answer: str | None = None  # the generated text (free generation only)


@dataclass(frozen=True)
class Item:
    utterance: Utterance
    chunk: ChunkFeatures


def items(utterances: list[Utterance], features: FeatureTable) -> list[Item]:
    """Every chunk of every utterance, shortest text first, so that a batch holds prompts and answers
    of like lengths (less padding; a generating batch stops with its longest answer). The sort is
    stable and the key the utterance's, so each utterance's chunks stay in order."""
    by_length = sorted(utterances, key=lambda u: len(u.text))
    return [Item(u, chunk) for u in by_length for chunk in features.chunks(u.id)]


def combined(chunks: list[Prediction]) -> Prediction:
    """One utterance's prediction from its chunks': scores averaged, answers joined."""
    return Prediction(average([p.scores for p in chunks]), "\n---\n".join(p.answer or "" for p in chunks) or None)


def batches(sequence: list, size: int, description: str) -> Iterator[list]:
    for start in tqdm(range(0, len(sequence), size), desc=description, unit="batch"):
        yield sequence[start : start + size]


class Decoder:
    """Base class: ``predict`` decodes every chunk of every utterance and averages the chunks, with
    the model's adapters merged into its weights meanwhile."""

    name: ClassVar[str]  # its conf/decoding/<name>.yaml and an objective's ``decoding``

    def __init__(self, batch_size: int = 8):
        self.batch_size = batch_size

    @classmethod
    def for_objective(cls, objective: Any) -> Decoder:
        """This strategy with its defaults, for a model trained with ``objective`` (an instance or its
        class, or None: untrained); the slot decoder reads the slots as the objective trained them."""
        return cls()

    def config(self) -> dict[str, Any]:
        """The config node that builds this decoder again (what training writes into a run's config)."""
        settings = [name for name in inspect.signature(type(self).__init__).parameters if name != "self"]
        return {"_target_": f"apa.evaluation.{type(self).__name__}", **{name: getattr(self, name) for name in settings}}

    @torch.no_grad()
    def predict(
        self,
        model: nn.Module,
        processor: ProcessorMixin,
        prompt: Prompt,
        utterances: list[Utterance],
        features: FeatureTable,
    ) -> dict[str, Prediction]:
        model.eval()
        decoded: dict[str, list[Prediction]] = {}
        with merged_adapter(model):
            for batch in batches(items(utterances, features), self.batch_size, f"Decoding ({self.name})"):
                for item, prediction in zip(batch, self.decode(model, processor, prompt, batch), strict=True):
                    decoded.setdefault(item.utterance.id, []).append(prediction)
        return {u.id: combined(decoded[u.id]) for u in utterances if u.id in decoded}  # in their order

    def decode(self, model, processor, prompt, batch: list[Item]) -> list[Prediction]:
        raise NotImplementedError


def collate(processor, prompt: Prompt, rows: list[Encoded], batch: list[Item], padding_side: str = "right"):
    collate = Collator(processor.tokenizer.pad_token_id, prompt.aspect_names, padding_side=padding_side)
    return collate(rows, [item.chunk for item in batch], list(range(len(batch))))


def to_device(inputs: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    device = model.get_input_embeddings().weight.device
    return {name: tensor.to(device) for name, tensor in inputs.items()}


def templates(encoder: PromptEncoder, batch: list[Item]) -> list[Encoded]:
    """Each item's answer rendered from blank scores: the template, with slots to read."""
    return [encoder.encode(item.utterance, item.chunk.mel_frames, blank(item.utterance.scores)) for item in batch]
