"""SimPO with a cross-entropy anchor (Wang et al. 2025; Meng et al. 2024).

Each example has a chosen answer y+ (the reference) and a rejected one y- (a simulated negative,
:mod:`apa.prompts.negatives`). With r(y) the mean token log-likelihood of y,
    L_SimPO = log(1 + exp(-beta * (r(y+) - r(y-) - gamma)))
    L = L_SimPO + lambda * L_CE(y+)
(beta=0.1, gamma=0.5, lambda=0.1). Note that gamma sits inside beta's bracket, as Wang et al.
write it; TRL's ``simpo_gamma`` is beta * gamma in these terms. Both answers share the
example's single audio encoding.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from apa.models.forward import hidden_states
from apa.objectives.base import Objective, ObjectiveOutput, target_log_probs


def simpo_loss(chosen: torch.Tensor, rejected: torch.Tensor, beta: float, gamma: float) -> torch.Tensor:
    """Per-pair log(1 + exp(-beta * (r+ - r- - gamma))) from mean token log-likelihoods."""
    return F.softplus(-beta * (chosen - rejected - gamma))


def mean_per_row(values: torch.Tensor, rows: torch.Tensor, n_rows: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum of ``values`` per row and how many each row has."""
    totals = torch.zeros(n_rows, device=values.device, dtype=values.dtype).index_add(0, rows, values)
    counts = torch.zeros(n_rows, device=values.device, dtype=values.dtype).index_add(0, rows, torch.ones_like(values))
    return totals, counts


class SimPOCrossEntropy(Objective):
    name = "simpo_ce"
    needs_pairs = True

    def __init__(self, beta: float = 0.1, gamma: float = 0.5, ce_weight: float = 0.1):
        super().__init__()
        self.beta, self.gamma, self.ce_weight = beta, gamma, ce_weight

    def forward(self, model, batch) -> ObjectiveOutput:
        log_probs, rows = target_log_probs(model, hidden_states(model, batch), batch["labels"])
        n_rows = len(batch["labels"])
        totals, counts = mean_per_row(log_probs, rows, n_rows)
        rewards = totals / counts
        chosen, rejected = rewards[: n_rows // 2], rewards[n_rows // 2 :]
        simpo = simpo_loss(chosen, rejected, self.beta, self.gamma).mean()
        ce = -totals[: n_rows // 2].sum() / counts[: n_rows // 2].sum()
        loss = simpo + self.ce_weight * ce
        metrics = {
            "simpo": simpo,
            "ce": ce,
            "margin": (chosen - rejected).mean(),
            "reward_acc": (chosen > rejected).float().mean(),
            "chosen_reward": chosen.mean(),
            "rejected_reward": rejected.mean(),
        }
        return ObjectiveOutput(loss, {k: v.detach() for k, v in metrics.items()})
