"""Slot decoding: the answer's template is known from the reference text, so only the slots are
read (docs/architecture.md section 2), ``soft`` (the expected class value) or ``hard`` (argmax).

For models trained on masked slots (``fa``) every slot is read in one batched forward pass;
otherwise slots are read left to right, each argmax fed back before the next (one short
incremental step per slot, with the key-value cache)."""

from __future__ import annotations

from typing import Any

import torch
from transformers import DynamicCache

from apa.data.scales import ZERO_TO_TEN
from apa.evaluation.decoders.base import Decoder, Item, Prediction, collate, templates, to_device
from apa.models.encoding import Encoded, PromptEncoder, check_one_token_per_score
from apa.models.forward import embed, encode_audio, hidden_states, logits, qwen2_audio
from apa.models.score_tokens import read_classes, score_token_ids
from apa.prompts.slots import blank, fill


class SlotDecoder(Decoder):
    name = "slots"
    READOUTS = ("soft", "hard")

    def __init__(self, batch_size: int = 8, readout: str = "soft", masked_slots: bool = False):
        """``masked_slots``: the model was trained with every slot masked, so all are read in one
        pass (else left to right). A run's config holds it as its objective trained
        (:func:`apa.evaluation.decoders.decoding_config`)."""
        super().__init__(batch_size)
        if readout not in self.READOUTS:
            raise ValueError(f"decoding.readout={readout!r} is not one of {', '.join(self.READOUTS)}")
        self.readout = readout
        self.masked_slots = masked_slots

    @classmethod
    def for_objective(cls, objective: Any) -> SlotDecoder:
        return cls(masked_slots=bool(objective is not None and objective.masked_slots))

    def decode(self, model, processor, prompt, batch):
        check_one_token_per_score(prompt, "slot decoding")
        class_ids = torch.tensor(score_token_ids(processor.tokenizer, prompt.vocabulary))
        encoder = PromptEncoder(processor.tokenizer, prompt, masked_slots=self.masked_slots)
        rows = templates(encoder, batch)
        if self.masked_slots:
            return self._one_pass(model, processor, prompt, rows, batch, class_ids)
        return [self._left_to_right(model, row, item, class_ids) for row, item in zip(rows, batch, strict=True)]

    def _one_pass(self, model, processor, prompt, rows, batch, class_ids):
        inputs = to_device(collate(processor, prompt, rows, batch), model)
        hidden = hidden_states(model, inputs)
        predictions = []
        for r, (row, item) in enumerate(zip(rows, batch, strict=True)):
            positions = torch.tensor(row.slot_positions, device=hidden.device) - 1
            class_logits = logits(model, hidden[r, positions])[:, class_ids.to(hidden.device)]
            allowed = inputs["slot_classes"][r, : len(positions)]
            scores, _ = read_classes(class_logits, allowed, self.readout)
            predictions.append(Prediction(fill(blank(item.utterance.scores), row.rendered.slots, scores.tolist())))
        return predictions

    def _left_to_right(self, model, row: Encoded, item: Item, class_ids: torch.Tensor) -> Prediction:
        device = model.get_input_embeddings().weight.device
        features = torch.from_numpy(item.chunk.features)[None].to(device)
        frames = torch.zeros((1, features.shape[-1]), dtype=torch.long, device=device)
        frames[0, : item.chunk.mel_frames] = 1
        audio = encode_audio(model, features, frames)
        language_model = qwen2_audio(model).model.language_model
        ids, cache, start, scores = list(row.input_ids), DynamicCache(), 0, []
        for slot, position in zip(row.rendered.slots, row.slot_positions, strict=True):
            chunk = torch.tensor([ids[start:position]], device=device)
            embedded = embed(model, chunk, audio, torch.zeros(1, dtype=torch.long))
            hidden = language_model(inputs_embeds=embedded, past_key_values=cache, use_cache=True).last_hidden_state
            allowed = torch.zeros(1, len(ZERO_TO_TEN), dtype=torch.bool, device=device)
            allowed[0, list(slot.classes)] = True
            score, best = read_classes(logits(model, hidden[:, -1])[:, class_ids.to(device)], allowed, self.readout)
            scores.append(score.item())
            ids[position] = int(class_ids[best.item()])
            start = position
        return Prediction(fill(blank(item.utterance.scores), row.rendered.slots, scores))
