"""Fair-average soft classification (Ma et al. 2025), kept from collapsing by a proper scoring rule.

At every score slot the LM head's logits over the class tokens are turned into probabilities
p_k (only the classes of that slot's scale), the expected score is E = sum_k p_k v_k, and the
loss is the mean squared error to the reference on the 0-10 scale:
    L_FA = (1/S) sum_slots (sum_k p_k v_k - y)^2
That much is the paper's ("weighted averages across class predictions"); the exact loss is our
reading of it. Continuous references (a phone's mean expert score, completeness) are used as they are.

Trained alone, L_FA collapses on a model whose audio understanding starts from nothing (the
``mini`` model's projector is random; BENCHMARKS.md has the measurements). The gradient of the
expectation, dE/dz_k = p_k (v_k - E), scales with the spread of p, and L_FA does not care about
that spread: any p with the right mean is optimal. Within the first ten steps the class logits
grow (their range from 2 to 10, then 15) until p is a spike on the training mean's class, for
every input alike; from then on E can no longer follow the audio (predictions' standard deviation
0.01). Starting p at the labels' distribution does not prevent it, nor does freezing the class rows.

So the expectation is trained together with a cross-entropy on the same distribution against the
two-hot target q(y) (its mass on the two classes around y, so that its mean is y; the value
targets of Schrittwieser et al. 2020):
    L = L_FA + slot_ce_weight * (1/S) sum_slots -sum_k q_k(y) log p_k  [+ ce_weight * L_CE(template)]
Its gradient, p - q, does not vanish on a wrong spike, and an uninformed model's best answer under
it is the labels' distribution rather than a spike, so E stays sensitive to the input.
``slot_ce_weight=0`` is the paper's loss alone; ``granularity_weights`` weighs the slots by granularity
instead of alike (:mod:`apa.objectives.weighting`); ``within_utterance_weight`` adds a correlation of
E with the references inside each utterance's words and phones (:mod:`apa.objectives.within`).
``ce_weight`` adds cross-entropy on the answer's template tokens (the text between the slots), which
keeps the format for free generation.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from apa.data.scales import ZERO_TO_TEN
from apa.models.forward import hidden_states, logits, slot_hidden
from apa.models.score_tokens import read_classes, score_token_ids
from apa.objectives.base import Objective, ObjectiveOutput, answer_cross_entropy
from apa.objectives.weighting import GranularityWeights, weighted_mean
from apa.objectives.within import WithinUtterance


def expected_scores(class_logits: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    """sum_k softmax(logits)_k * k over the allowed classes; (n, 11) logits and mask -> (n,): the
    score slot decoding reads (its soft readout)."""
    scores, _ = read_classes(class_logits, allowed)
    return scores


def fair_average_loss(
    class_logits: torch.Tensor, allowed: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean of (sum_k p_k v_k - y)^2 over the slots (weighted: :mod:`apa.objectives.weighting`)."""
    return weighted_mean((expected_scores(class_logits, allowed) - targets.float()) ** 2, weights)


def two_hot(targets: torch.Tensor, n_classes: int = len(ZERO_TO_TEN)) -> torch.Tensor:
    """(n,) scores on the 0-10 scale -> (n, n_classes) distributions on the two classes around
    each score, weighted so that their mean is the score (8.4 -> 0.6 on 8, 0.4 on 9)."""
    targets = targets.float()
    lower = targets.floor().clamp(0, n_classes - 1)
    upper_weight = targets - lower
    distribution = torch.zeros(len(targets), n_classes, device=targets.device)
    distribution.scatter_add_(1, lower.long()[:, None], (1 - upper_weight)[:, None])
    upper = (lower + 1).clamp(max=n_classes - 1).long()
    return distribution.scatter_add_(1, upper[:, None], upper_weight[:, None])


def class_cross_entropy(
    class_logits: torch.Tensor, allowed: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean over the slots (or weighted) of -sum_k q_k(y) log p_k, with q the two-hot target and p
    over the allowed classes."""
    target = two_hot(targets)
    if (target[~allowed] > 0).any():
        raise ValueError("a reference lies between classes its scale does not allow (e.g. stress 7): cannot two-hot it")
    log_probs = torch.log_softmax(class_logits.float().masked_fill(~allowed, float("-inf")), dim=-1)
    return weighted_mean(-(target * log_probs.masked_fill(~allowed, 0.0)).sum(dim=-1), weights)


class FairAverage(Objective):
    name = "fa"
    masked_slots = True
    decoding = "slots"

    def __init__(
        self,
        slot_ce_weight: float = 1.0,
        ce_weight: float = 0.0,
        granularity_weights: Mapping[str, float] | None = None,
        within_utterance_weight: float = 0.0,
    ):
        super().__init__()
        self.slot_ce_weight = slot_ce_weight
        self.ce_weight = ce_weight
        self.slot_weights = GranularityWeights(granularity_weights)
        self.within = WithinUtterance(within_utterance_weight)
        self.register_buffer("class_ids", torch.zeros(len(ZERO_TO_TEN), dtype=torch.long), persistent=False)

    def check(self, prompt) -> None:
        super().check(prompt)
        self.slot_weights.check(prompt)
        self.within.check(prompt)

    def setup(self, model, tokenizer, prompt) -> list[str]:
        self.class_ids = torch.tensor(score_token_ids(tokenizer, prompt.vocabulary))
        self.slot_weights.setup(prompt)
        self.within.setup(prompt)
        return []

    def forward(self, model, batch) -> ObjectiveOutput:
        hidden = hidden_states(model, batch)
        at_slots, valid = slot_hidden(hidden, batch)
        class_logits = logits(model, at_slots)[:, self.class_ids.to(at_slots.device)]
        allowed, targets = batch["slot_classes"][valid], batch["slot_targets"][valid]
        aspects = batch["slot_aspects"][valid]
        weights = self.slot_weights(aspects)
        expected = expected_scores(class_logits, allowed)
        mse = weighted_mean((expected - targets.float()) ** 2, weights)
        metrics = {"fa_mse": mse.detach()}
        loss = mse
        within = self.within(expected, targets, valid, aspects)
        if within is not None:
            loss = loss + within
            metrics["within"] = within.detach()
        if self.slot_ce_weight:
            slot_ce = class_cross_entropy(class_logits, allowed, targets, weights)
            loss = loss + self.slot_ce_weight * slot_ce
            metrics["slot_ce"] = slot_ce.detach()
        if self.ce_weight:
            ce = answer_cross_entropy(model, hidden, batch["labels"])
            loss = loss + self.ce_weight * ce
            metrics["ce"] = ce.detach()
        return ObjectiveOutput(loss, metrics)
