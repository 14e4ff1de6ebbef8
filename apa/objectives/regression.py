"""Regression head (Ma et al. 2025).

The paper's part: a regression head on the speech LLM predicts the score directly and is trained
with a mean squared error, as the alternative to classification over score tokens. The paper does
not spell out where the head reads, its shape or the target scale; these are our reading:
- it reads the last layer's hidden state at the position just before each score slot (the one
  whose next-token prediction would write the score), with the slot token masked, so every slot of
  a multi-aspect answer gets its own prediction in one forward pass;
- one linear output per aspect (``hidden_size`` makes it a small MLP), saved with the adapter;
- the error is measured as a fraction of the scale (the head predicts scores on 0-10,
  :class:`~apa.models.heads.ScoreHead`) and the loss is the mean over slots:
    L_reg = (1/S) sum_slots ((f_aspect(h_slot) - y) / 10)^2
  (``granularity_weights`` weighs the slots by granularity instead: :mod:`apa.objectives.weighting`;
  ``within_utterance_weight`` adds a correlation inside each utterance's words and phones:
  :mod:`apa.objectives.within`).
"""

from __future__ import annotations

from collections.abc import Mapping

from apa.models.forward import hidden_states, slot_hidden
from apa.models.heads import HEAD_NAME, ScoreHead, attach_head, get_head
from apa.objectives.base import Objective, ObjectiveOutput
from apa.objectives.weighting import GranularityWeights, weighted_mean
from apa.objectives.within import WithinUtterance


class Regression(Objective):
    name = "regression"
    masked_slots = True
    decoding = "regression"

    def __init__(
        self,
        hidden_size: int | None = None,
        dropout: float = 0.1,
        granularity_weights: Mapping[str, float] | None = None,
        within_utterance_weight: float = 0.0,
    ):
        super().__init__()
        self.hidden_size = hidden_size
        self.dropout = dropout
        self.slot_weights = GranularityWeights(granularity_weights)
        self.within = WithinUtterance(within_utterance_weight)

    def check(self, prompt) -> None:
        super().check(prompt)
        self.slot_weights.check(prompt)
        self.within.check(prompt)

    def setup(self, model, tokenizer, prompt) -> list[str]:
        head = ScoreHead(model.config.text_config.hidden_size, prompt.aspect_names, self.hidden_size, self.dropout)
        attach_head(model, head)
        self.slot_weights.setup(prompt)
        self.within.setup(prompt)
        return [HEAD_NAME]

    def forward(self, model, batch) -> ObjectiveOutput:
        at_slots, valid = slot_hidden(hidden_states(model, batch), batch)
        aspects = batch["slot_aspects"][valid]
        predicted, targets = get_head(model)(at_slots, aspects), batch["slot_targets"][valid]
        errors = ((predicted.float() - targets.float()) / ScoreHead.SCALE) ** 2
        mse = weighted_mean(errors, self.slot_weights(aspects))
        within = self.within(predicted, targets, valid, aspects)
        if within is None:
            return ObjectiveOutput(mse, {"mse": mse.detach()})
        return ObjectiveOutput(mse + within, {"mse": mse.detach(), "within": within.detach()})
