"""A term that asks word and phone scores to point at the error inside their utterance.

Trained with a squared error alone, the word and phone scores of the ``mini`` models follow their
utterance's level: 5 to 31% of their variance lies within utterances, against 68 to 72% of the
references' (BENCHMARKS.md, the localisation table). A squared error already holds the within part
(sum_s e_s^2 = sum_s (e_s - mean e)^2 + n (mean e)^2), but its gradient on a near-constant answer
is as small as the answer's spread. A correlation does not care about the spread: it rewards the
right order of the scores inside an utterance however small their differences, so a model that
has begun to tell a word from its neighbours is pulled on further. Our addition, in no paper:

    L_within = mean_g (1 - r_g),   r_g = cov_g(pred, ref) / sqrt((var_g(pred) + eps) var_g(ref))

over the groups g = (utterance, word or phone aspect) whose references vary (an utterance whose
phones are all right has no error to point at) and hold at least two slots. ``eps`` keeps a
constant prediction's gradient finite. Scores are on the 0-10 scale.
"""

from __future__ import annotations

import torch
from torch import nn

from apa.prompts import Prompt

LOCATED = ("word", "phone")  # the granularities whose scores sit inside an utterance
EPS = 1e-2  # squared score units summed over a group: an sd of 0.1 on 0-10 over ten slots


def within_group_correlation(
    predicted: torch.Tensor, targets: torch.Tensor, groups: torch.Tensor, eps: float = EPS
) -> torch.Tensor:
    """Mean over groups of 1 - PCC(predicted, targets) inside each group; (n,) tensors, ``groups``
    integer ids. Groups with one slot or constant targets are left out; none left gives 0 (with a
    gradient path, so a batch without them trains as usual)."""
    ids, inverse, counts = torch.unique(groups, return_inverse=True, return_counts=True)

    def group_sum(values: torch.Tensor) -> torch.Tensor:
        return torch.zeros(len(ids), device=values.device, dtype=values.dtype).index_add_(0, inverse, values)

    predicted, targets = predicted.float(), targets.float()
    centred_pred = predicted - (group_sum(predicted) / counts)[inverse]
    centred_ref = targets - (group_sum(targets) / counts)[inverse]
    covariance = group_sum(centred_pred * centred_ref)
    pred_var, ref_var = group_sum(centred_pred**2), group_sum(centred_ref**2)
    kept = (counts >= 2) & (ref_var > 1e-8)
    if not kept.any():
        return predicted.sum() * 0.0
    correlation = covariance[kept] / torch.sqrt((pred_var[kept] + eps) * ref_var[kept])
    return (1 - correlation).mean()


class WithinUtterance(nn.Module):
    """``weight`` x :func:`within_group_correlation` over a batch's word and phone slots (0: off)."""

    def __init__(self, weight: float = 0.0):
        super().__init__()
        if not isinstance(weight, int | float) or weight < 0:
            raise ValueError(f"within_utterance_weight={weight!r}: expected a non-negative number (0: off)")
        self.weight = float(weight)
        self.register_buffer("located", torch.zeros(0, dtype=torch.bool), persistent=False)

    def check(self, prompt: Prompt) -> None:
        """A weight on a prompt with no word or phone scores would silently do nothing."""
        if self.weight and not any(g in prompt.aspects for g in LOCATED):
            raise ValueError(
                f"within_utterance_weight={self.weight} needs word or phone scores, but prompt {prompt.name} "
                f"scores only {', '.join(prompt.aspects)}: set it to 0"
            )

    def setup(self, prompt: Prompt) -> None:
        """Which of the prompt's aspects (the collator's ``slot_aspects`` index them) are word or phone ones."""
        self.located = torch.tensor([name.split("/")[0] in LOCATED for name in prompt.aspect_names])

    def forward(self, predicted: torch.Tensor, targets: torch.Tensor, valid: torch.Tensor, aspects: torch.Tensor):
        """The weighted term for one batch, or None when off. ``predicted`` and ``targets`` are the
        valid slots' scores on 0-10, ``valid`` the (rows, slots) mask they were taken with, and
        ``aspects`` their aspect indices."""
        if not self.weight:
            return None
        rows = valid.nonzero()[:, 0]
        located = self.located.to(aspects.device)[aspects]
        groups = rows * len(self.located) + aspects
        term = within_group_correlation(predicted[located], targets[located], groups[located])
        return self.weight * term
