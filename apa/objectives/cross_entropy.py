"""Cross-entropy fine-tuning on the answer text (Wang et al. 2025): prompt and padding masked.

    L_CE = -(1/N) sum_t log p(y_t | x, y_<t)   over the N answer tokens of the batch

That is the paper's loss, and the default. Two options, ours (issue "objectives that learn",
BENCHMARKS.md says why):
- ``masked_slots``: every score slot is fed as ``<|score_mask|>`` while its written class stays
  the label, so under teacher forcing no slot can copy the gold score before it (total follows
  accuracy in the labels, r = 0.97); its models are read in one pass by slot decoding.
- ``template_weight`` w: the template's tokens (the text between the slots, copied from the
  prompt) against the score tokens,
      L = (w sum_template l_t + sum_slots l_t) / (w N_template + N_slots),
  w = 1 the plain mean; on ``multi`` the slots are 13% of the answer's tokens.
The slot and template cross-entropies are logged apart (``slot_ce``, ``template_ce``).
"""

from __future__ import annotations

import torch

from apa.models.batching import IGNORE
from apa.models.forward import hidden_states
from apa.models.score_tokens import score_token_ids
from apa.objectives.base import Objective, ObjectiveOutput, gold_at_slots, slot_token_mask, target_log_probs


class CrossEntropy(Objective):
    name = "ce"

    def __init__(self, masked_slots: bool = False, template_weight: float = 1.0):
        super().__init__()
        if not isinstance(template_weight, int | float) or template_weight < 0:
            raise ValueError(f"objective.template_weight={template_weight!r}: expected a non-negative number")
        self.masked_slots = bool(masked_slots)
        self.decoding = self.reads(self.masked_slots)
        self.template_weight = float(template_weight)
        self.register_buffer("class_ids", torch.zeros(0, dtype=torch.long), persistent=False)

    def setup(self, model, tokenizer, prompt) -> list[str]:
        if self.masked_slots:
            self.class_ids = torch.tensor(score_token_ids(tokenizer, prompt.vocabulary))
        return []

    def forward(self, model, batch) -> ObjectiveOutput:
        labels = gold_at_slots(batch, self.class_ids) if self.masked_slots else batch["labels"]
        log_probs, _ = target_log_probs(model, hidden_states(model, batch), labels)
        at_slot = slot_token_mask(batch)[:, 1:][labels[:, 1:] != IGNORE]
        losses, weights = -log_probs, torch.where(at_slot, 1.0, self.template_weight).to(log_probs.dtype)
        loss = (weights * losses).sum() / weights.sum()
        metrics = {"ce": loss}
        if at_slot.any():
            metrics["slot_ce"] = losses[at_slot].mean()
        if (~at_slot).any():
            metrics["template_ce"] = losses[~at_slot].mean()
        return ObjectiveOutput(loss, {k: v.detach() for k, v in metrics.items()})
