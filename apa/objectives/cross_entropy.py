"""Cross-entropy fine-tuning on the answer text (Wang et al. 2025): prompt and padding masked.

    L_CE = -(1/N) sum_t log p(y_t | x, y_<t)   over the N answer tokens of the batch

That is the paper's loss, and the default. On the ``mini`` model and real speech it answers one
constant (``8 8 8 10 8`` for 296 of 300 test utterances), for three reasons measured there
(BENCHMARKS.md):
- copying under teacher forcing: each slot is trained with the gold scores before it in context
  (in the labels total follows accuracy, r = 0.97), so only the first has to listen; read softly,
  PCC falls along the answer's order, 0.69 (accuracy) to 0.08 (total, the fifth);
- greedy decoding returns the mode: the argmax of a hedged distribution is the most frequent class
  for everyone (it holds 36-39% of sentence labels and 80-99% of word and phone labels);
- a diluted loss: the plain mean gives the ~42 score slots of a ``multi`` answer 13% of the loss's
  weight; with masked slots alone the template's cross-entropy fell to 0.001 while the slots' stayed
  near the 0.775 nats of an answer that ignores the audio for 1.5 epochs.
The options against them, ours:
- ``masked_slots``: every score slot is fed as ``<|score_mask|>`` while its written class stays
  the label, so under teacher forcing no slot can copy the gold score before it; its models are
  read in one pass by slot decoding, softly (the expected class value, not the mode).
- ``template_weight`` w: the template's tokens (the text between the slots, copied from the
  prompt) against the score tokens,
      L = (w sum_template l_t + sum_slots l_t) / (w N_template + N_slots),
  w = 1 the plain mean; on ``multi`` the slots are 13% of the answer's tokens.
- ``slot_noise`` p (with free generation kept): in each training batch a share p of the slots is
  fed as ``<|score_mask|>`` (``slot_noise_kind=mask``) or as a random class (``corrupt``), its
  label still the gold class, so a slot cannot rely on copying the one before it while the
  model still learns to read its own scores in context, as generation feeds them.
The slot and template cross-entropies are logged apart (``slot_ce``, ``template_ce``).
"""

from __future__ import annotations

import torch

from apa.models.encoding import check_one_token_per_score
from apa.models.forward import hidden_states, slot_coordinates
from apa.models.score_tokens import mask_token_id, score_token_ids
from apa.objectives.base import (
    Objective,
    ObjectiveOutput,
    check_template_weight,
    gold_at_slots,
    labelled_slots,
    target_log_probs,
    weighted_cross_entropy,
)

NOISE_KINDS = ("mask", "corrupt")


class CrossEntropy(Objective):
    name = "ce"

    def __init__(
        self,
        masked_slots: bool = False,
        template_weight: float = 1.0,
        slot_noise: float = 0.0,
        slot_noise_kind: str = "mask",
    ):
        super().__init__()
        if not isinstance(slot_noise, int | float) or not 0 <= slot_noise <= 1 or (slot_noise and masked_slots):
            raise ValueError(
                f"objective.slot_noise={slot_noise!r}: expected a share from 0 to 1, and 0 with masked_slots "
                "(every slot is masked already)"
            )
        if slot_noise_kind not in NOISE_KINDS:
            raise ValueError(f"objective.slot_noise_kind={slot_noise_kind!r} is not one of {', '.join(NOISE_KINDS)}")
        self.masked_slots = bool(masked_slots)
        self.decoding = self.reads(self.masked_slots)
        self.template_weight = check_template_weight(template_weight)
        self.slot_noise, self.slot_noise_kind = float(slot_noise), slot_noise_kind
        self.register_buffer("class_ids", torch.zeros(0, dtype=torch.long), persistent=False)
        self.mask_id = None

    def check(self, prompt) -> None:
        super().check(prompt)
        if self.slot_noise:
            check_one_token_per_score(prompt, f"objective.slot_noise={self.slot_noise}")

    def setup(self, model, tokenizer, prompt) -> list[str]:
        if self.masked_slots or self.slot_noise:
            self.class_ids = torch.tensor(score_token_ids(tokenizer, prompt.vocabulary))
            self.mask_id = mask_token_id(tokenizer)
        return []

    def noisy_slots(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The batch with a random share ``slot_noise`` of its slots' input tokens masked or replaced
        by a random class (their labels kept); only while training."""
        rows, positions = slot_coordinates(batch)
        chosen = torch.rand(len(positions), device=positions.device) < self.slot_noise
        input_ids = batch["input_ids"].clone()
        if self.slot_noise_kind == "mask":
            input_ids[rows[chosen], positions[chosen]] = self.mask_id
        else:
            classes = self.class_ids.to(input_ids.device)
            input_ids[rows[chosen], positions[chosen]] = classes[torch.randint(len(classes), (int(chosen.sum()),))]
        return {**batch, "input_ids": input_ids}

    def forward(self, model, batch) -> ObjectiveOutput:
        if self.slot_noise and self.training:
            batch = self.noisy_slots(batch)
        labels = gold_at_slots(batch, self.class_ids) if self.masked_slots else batch["labels"]
        log_probs, _ = target_log_probs(model, hidden_states(model, batch), labels)
        at_slot = labelled_slots(batch, labels)
        losses = -log_probs
        loss = weighted_cross_entropy(losses, at_slot, self.template_weight)
        metrics = {"ce": loss}
        if at_slot.any():
            metrics["slot_ce"] = losses[at_slot].mean()
        if (~at_slot).any():
            metrics["template_ce"] = losses[~at_slot].mean()
        return ObjectiveOutput(loss, {k: v.detach() for k, v in metrics.items()})
