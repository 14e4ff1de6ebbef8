"""Collate encoded sequences and their audio features into the tensors the forward pass reads."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from apa.data.features import ChunkFeatures
from apa.data.scales import ZERO_TO_TEN
from apa.models.audio_cache import TowerStates
from apa.models.encoding import Encoded

IGNORE = -100


@dataclass(frozen=True)
class Collator:
    """Pads rows to one length and stacks one feature matrix per audio.

    ``audio_index[r]`` says which audio row ``r`` belongs to (chosen and rejected answers share
    one). Labels are the target tokens (``IGNORE`` elsewhere, and at the slots of rows encoded with
    masked slots, which hold the mask token, not an answer to learn).
    Slot tensors: positions, validity, targets on the 0-10 scale, allowed classes, the class written
    (the label's nearest allowed class) and aspect index.
    Right padding for training; left padding for generation.
    """

    pad_id: int
    aspect_names: Sequence[str]
    padding_side: str = "right"

    def __call__(
        self, rows: Sequence[Encoded], audio: Sequence[ChunkFeatures | TowerStates], audio_index: Sequence[int]
    ) -> dict[str, torch.Tensor]:
        length = max(len(row) for row in rows)
        n_slots = max(len(row.slot_positions) for row in rows)
        input_ids = torch.full((len(rows), length), self.pad_id, dtype=torch.long)
        attention_mask = torch.zeros((len(rows), length), dtype=torch.long)
        labels = torch.full((len(rows), length), IGNORE, dtype=torch.long)
        slot_positions = torch.zeros((len(rows), n_slots), dtype=torch.long)
        slot_valid = torch.zeros((len(rows), n_slots), dtype=torch.bool)
        slot_targets = torch.zeros((len(rows), n_slots), dtype=torch.float32)
        slot_classes = torch.zeros((len(rows), n_slots, len(ZERO_TO_TEN)), dtype=torch.bool)
        slot_written = torch.zeros((len(rows), n_slots), dtype=torch.long)
        slot_aspects = torch.zeros((len(rows), n_slots), dtype=torch.long)
        aspect_index = {name: i for i, name in enumerate(self.aspect_names)}
        for r, row in enumerate(rows):
            offset = length - len(row) if self.padding_side == "left" else 0
            span = slice(offset, offset + len(row))
            input_ids[r, span] = torch.tensor(row.input_ids)
            attention_mask[r, span] = 1
            target = slice(offset + row.target_start, offset + len(row))
            labels[r, target] = input_ids[r, target]
            for s, (slot, position) in enumerate(zip(row.rendered.slots, row.slot_positions, strict=True)):
                slot_positions[r, s] = offset + position
                slot_valid[r, s] = True
                slot_targets[r, s] = slot.target
                slot_classes[r, s, list(slot.classes)] = True
                slot_written[r, s] = slot.score_class
                slot_aspects[r, s] = aspect_index[f"{slot.granularity}/{slot.aspect}"]
                if row.masked_slots:
                    labels[r, offset + position] = IGNORE
        return {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "labels": labels,
            **audio_inputs(audio),
            "audio_index": torch.tensor(list(audio_index), dtype=torch.long),
            "slot_positions": slot_positions,
            "slot_valid": slot_valid,
            "slot_targets": slot_targets,
            "slot_classes": slot_classes,
            "slot_written": slot_written,
            "slot_aspects": slot_aspects,
        }


def audio_inputs(audio: Sequence[ChunkFeatures | TowerStates]) -> dict[str, torch.Tensor]:
    """Features and their mask, or cached tower outputs (padded) and their lengths."""
    if isinstance(audio[0], TowerStates):
        lengths = [len(a.states) for a in audio]
        states = np.zeros((len(audio), max(lengths), audio[0].states.shape[1]), dtype=np.float32)
        for a, item in enumerate(audio):
            states[a, : lengths[a]] = item.states
        return {"audio_states": torch.from_numpy(states), "audio_lengths": torch.tensor(lengths)}
    feature_mask = torch.zeros((len(audio), audio[0].features.shape[1]), dtype=torch.long)
    for a, chunk in enumerate(audio):
        feature_mask[a, : chunk.mel_frames] = 1
    features = torch.from_numpy(np.stack([chunk.features for chunk in audio]))
    return {"input_features": features, "feature_attention_mask": feature_mask}
