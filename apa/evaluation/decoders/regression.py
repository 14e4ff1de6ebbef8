"""The regression head's output at every masked slot, in one pass (models trained with
``objective=regression``)."""

from __future__ import annotations

from apa.evaluation.decoders.base import Decoder, Prediction, collate, templates, to_device
from apa.models.encoding import PromptEncoder
from apa.models.forward import hidden_states, slot_hidden
from apa.models.heads import get_head
from apa.prompts.slots import blank, fill


class RegressionDecoder(Decoder):
    name = "regression"

    def decode(self, model, processor, prompt, batch):
        encoder = PromptEncoder(processor.tokenizer, prompt, masked_slots=True)
        rows = templates(encoder, batch)
        inputs = to_device(collate(processor, prompt, rows, batch), model)
        at_slots, valid = slot_hidden(hidden_states(model, inputs), inputs)
        predicted = get_head(model)(at_slots, inputs["slot_aspects"][valid]).clamp(0, 10).tolist()
        predictions, start = [], 0
        for row, item in zip(rows, batch, strict=True):
            n = len(row.slot_positions)
            predictions.append(
                Prediction(fill(blank(item.utterance.scores), row.rendered.slots, predicted[start : start + n]))
            )
            start += n
        return predictions
