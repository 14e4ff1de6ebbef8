"""Training examples: every utterance chunk encoded once, its features taken from the cache."""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from dataclasses import dataclass

import torch
from torch.utils.data import Dataset
from tqdm.auto import tqdm
from transformers import TrainerCallback

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
    negatives: tuple[Encoded, ...] = ()  # one per epoch when negatives are redrawn (rejected: the first)

    def in_epoch(self, epoch: int) -> Example:
        """This example as epoch ``epoch`` sees it: its negative of that epoch, if it has several."""
        if len(self.negatives) < 2:
            return self
        return dataclasses.replace(self, rejected=self.negatives[epoch % len(self.negatives)])


def build_examples(
    utterances: list[Utterance],
    features: FeatureTable,
    encoder: PromptEncoder,
    pairs: bool,
    seed: int,
    negatives_per_example: int = 1,
) -> list[Example]:
    """One example per chunk (long recordings give several, each with the utterance's labels); with
    ``pairs``, ``negatives_per_example`` simulated negatives drawn in turn from the utterance's own
    generator (seeded: the first is the one a single draw gives)."""
    examples = []
    for utterance in tqdm(utterances, desc="Encoding examples", unit="utt"):
        for index, chunk in enumerate(features.chunks(utterance.id)):
            chosen = encoder.encode(utterance, chunk.mel_frames)
            negatives = ()
            if pairs:
                rng = negative_rng(seed, utterance.id)
                drawn = [perturb(utterance.scores, chosen.rendered, rng) for _ in range(negatives_per_example)]
                negatives = tuple(encoder.encode(utterance, chunk.mel_frames, negative) for negative in drawn)
            rejected = negatives[0] if negatives else None
            examples.append(Example(utterance.id, index, chosen, rejected, negatives if len(negatives) > 1 else ()))
    return examples


class ExampleSet(Dataset):
    """Examples with their audio (features, or cached tower outputs); ``lengths`` lets the sampler
    group similar lengths."""

    def __init__(self, examples: list[Example], audio: FeatureTable | TowerTable):
        self.examples = examples
        self.audio = audio
        self.epoch = 0  # which of an example's negatives is served (set by NegativesOfTheEpoch)

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> tuple[Example, ChunkFeatures | TowerStates]:
        example = self.examples[index].in_epoch(self.epoch)
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


class NegativesOfTheEpoch(TrainerCallback):
    """Serves each epoch's own simulated negatives: the dataset learns the epoch as it begins."""

    def __init__(self, dataset: ExampleSet):
        self.dataset = dataset

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.dataset.epoch = int(state.epoch or 0)


def slot_label_entropy(examples: list[Example]) -> float:
    """H(written class | aspect) over the examples' score slots, in nats: the cross-entropy of the
    best answer that ignores the audio (each aspect's class frequencies), the bar a slot
    cross-entropy must go below to show the model hears anything."""
    counts = Counter(
        (slot.granularity, slot.aspect, slot.score_class) for e in examples for slot in e.chosen.rendered.slots
    )
    per_aspect = Counter()
    for (granularity, aspect, _), n in counts.items():
        per_aspect[granularity, aspect] += n
    total = sum(counts.values())
    return -sum(n / total * math.log(n / per_aspect[g, a]) for (g, a, _), n in counts.items()) if total else 0.0
