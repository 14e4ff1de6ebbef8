"""Training examples: every utterance chunk encoded once, its features taken from the cache."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from apa.data.features import ChunkFeatures, FeatureTable
from apa.data.records import Utterance
from apa.models.audio_cache import TowerStates, TowerTable
from apa.models.batching import Collator
from apa.models.encoding import Encoded, PromptEncoder
from apa.prompts.negatives import negative_rng, perturb


@dataclass(frozen=True)
class Example:
    utterance_id: str
    chunk: int
    chosen: Encoded
    rejected: Encoded | None = None  # a simulated negative, for pairwise objectives


def build_examples(
    utterances: list[Utterance], features: FeatureTable, encoder: PromptEncoder, pairs: bool, seed: int
) -> list[Example]:
    """One example per chunk (long recordings give several, each with the utterance's labels)."""
    examples = []
    for utterance in tqdm(utterances, desc="Encoding examples", unit="utt"):
        for index, chunk in enumerate(features.chunks(utterance.id)):
            chosen = encoder.encode(utterance, chunk.mel_frames)
            rejected = None
            if pairs:
                negative = perturb(utterance.scores, chosen.rendered, negative_rng(seed, utterance.id))
                rejected = encoder.encode(utterance, chunk.mel_frames, negative)
            examples.append(Example(utterance.id, index, chosen, rejected))
    return examples


class ExampleSet(Dataset):
    """Examples with their audio (features, or cached tower outputs); ``lengths`` lets the sampler
    group similar lengths."""

    def __init__(self, examples: list[Example], audio: FeatureTable | TowerTable):
        self.examples = examples
        self.audio = audio

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> tuple[Example, ChunkFeatures | TowerStates]:
        example = self.examples[index]
        return example, self.audio.chunk(example.utterance_id, example.chunk)

    @property
    def lengths(self) -> list[int]:
        return [len(e.chosen) + (len(e.rejected) if e.rejected else 0) for e in self.examples]


@dataclass(frozen=True)
class TrainingCollator:
    """Batches examples: chosen rows, then rejected rows (if any), all sharing their audio.

    ``chosen_rows`` and ``rejected_rows`` say which rows pair up (a pairwise objective reads them;
    without rejected answers ``rejected_rows`` is empty)."""

    collate: Collator

    def __call__(self, items: list[tuple[Example, ChunkFeatures | TowerStates]]):
        examples = [example for example, _ in items]
        paired = [i for i, e in enumerate(examples) if e.rejected is not None]
        rows = [e.chosen for e in examples] + [examples[i].rejected for i in paired]
        audio_index = list(range(len(examples))) + paired
        batch = self.collate(rows, [features for _, features in items], audio_index)
        batch["chosen_rows"] = torch.tensor(paired, dtype=torch.long)
        batch["rejected_rows"] = torch.arange(len(examples), len(rows), dtype=torch.long)
        return batch
