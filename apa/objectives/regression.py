"""Regression head (Ma et al. 2025): a head reads the hidden state that precedes each score slot
and predicts the score; the loss is the mean squared error on the 0-1 scale (score / 10):
    L_reg = (1/S) sum_slots (f_aspect(h_slot) - y / 10)^2
The head is linear per aspect, or a small MLP with ``hidden_size``; it is saved with the adapter.
"""

from __future__ import annotations

import torch

from apa.models.forward import hidden_states, slot_hidden
from apa.models.heads import HEAD_NAME, ScoreHead, attach_head, get_head
from apa.objectives.base import Objective, ObjectiveOutput


class Regression(Objective):
    name = "regression"
    masks_slots = True
    decoding = "regression"

    def __init__(self, hidden_size: int | None = None, dropout: float = 0.1):
        super().__init__()
        self.hidden_size = hidden_size
        self.dropout = dropout

    def setup(self, model, tokenizer, prompt) -> list[str]:
        head = ScoreHead(model.config.text_config.hidden_size, prompt.aspect_names, self.hidden_size, self.dropout)
        attach_head(model, head)
        return [HEAD_NAME]

    def forward(self, model, batch) -> ObjectiveOutput:
        at_slots, valid = slot_hidden(hidden_states(model, batch), batch)
        predicted = get_head(model)(at_slots, batch["slot_aspects"][valid])
        mse = torch.mean((predicted.float() - batch["slot_targets"][valid].float() / 10) ** 2)
        return ObjectiveOutput(mse, {"mse": mse.detach()})
