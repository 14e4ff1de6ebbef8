"""How the score slots of a batch are averaged into one loss.

The papers' losses average over slots, every slot alike. On the ``multi`` prompt an answer holds 5
sentence slots, about 20 word slots (3 per word) and about 19 phone slots, so the sentence scores
are about a tenth of the loss and the words and phones the rest. ``granularity_weights`` (for
example ``{sentence: 1, word: 1, phone: 1}``) gives each granularity present in a batch its share
of the loss instead, split evenly among that granularity's slots:

    L = sum_g w_g * mean_{s in g} l_s / sum_g w_g        (g over the granularities in the batch)

A lever on what the model attends to, not a change of the objective: with every weight equal to
its granularity's share of the slots, it is the plain mean again.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from apa.prompts import Prompt

GRANULARITIES = ("sentence", "word", "phone")


def weighted_mean(values: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """The mean of ``values``, or their sum weighted by ``weights`` (which sum to 1)."""
    return values.mean() if weights is None else (values * weights).sum()


class GranularityWeights(nn.Module):
    """Per-slot weights from per-granularity ones (``None``: every slot alike, the papers' mean)."""

    def __init__(self, weights: Mapping[str, float] | None = None):
        super().__init__()
        self.given = None if weights is None else dict(weights)
        if self.given is not None:
            unknown = set(self.given) - set(GRANULARITIES)
            values = list(self.given.values())
            if unknown or any(not isinstance(v, int | float) or v < 0 for v in values) or not any(values):
                raise ValueError(
                    f"granularity_weights={self.given}: expected non-negative numbers, not all 0, for "
                    f"{', '.join(GRANULARITIES)} (or null: every slot alike)"
                )
        share = [float((self.given or {}).get(g, 0.0)) for g in GRANULARITIES]
        self.register_buffer("share", torch.tensor(share), persistent=False)
        self.register_buffer("aspect_granularity", torch.zeros(0, dtype=torch.long), persistent=False)

    def check(self, prompt: Prompt) -> None:
        """Every granularity the prompt asks for needs a weight (a missing one would silently be 0)."""
        missing = [g for g in prompt.aspects if self.given is not None and g not in self.given]
        if missing:
            raise ValueError(
                f"granularity_weights={self.given} has no weight for {', '.join(missing)}, which prompt "
                f"{prompt.name} scores (give 0 to leave it out of the loss)"
            )

    def setup(self, prompt: Prompt) -> None:
        """Map the prompt's aspects (the collator's ``slot_aspects`` index them) to their granularities."""
        self.aspect_granularity = torch.tensor([GRANULARITIES.index(n.split("/")[0]) for n in prompt.aspect_names])

    def forward(self, slot_aspects: torch.Tensor) -> torch.Tensor | None:
        """Weights for the slots whose aspect indices are ``slot_aspects`` (they sum to 1), or None."""
        if self.given is None:
            return None
        granularity = self.aspect_granularity.to(slot_aspects.device)[slot_aspects]
        counts = torch.bincount(granularity, minlength=len(GRANULARITIES)).float()
        share = self.share.to(counts.device) * (counts > 0)
        if not share.sum():
            raise ValueError("every slot of this batch has weight 0 (granularity_weights)")
        return share[granularity] / counts[granularity] / share.sum()
