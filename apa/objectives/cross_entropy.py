"""Cross-entropy fine-tuning on the answer text (Wang et al. 2025): prompt and padding masked."""

from __future__ import annotations

from apa.models.forward import hidden_states
from apa.objectives.base import Objective, ObjectiveOutput, answer_cross_entropy


class CrossEntropy(Objective):
    """L_CE = -(1/N) sum_t log p(y_t | x, y_<t) over the N answer tokens of the batch."""

    name = "ce"

    def forward(self, model, batch) -> ObjectiveOutput:
        loss = answer_cross_entropy(model, hidden_states(model, batch), batch["labels"])
        return ObjectiveOutput(loss, {"ce": loss.detach()})
