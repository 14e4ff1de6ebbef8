"""Fair-average soft classification (Ma et al. 2025).

At every score slot the LM head's logits over the class tokens are turned into probabilities
p_k (only the classes of that slot's scale), the expected score is s = sum_k p_k v_k, and the
loss is the mean squared error to the reference on the 0-10 scale:
    L_FA = (1/S) sum_slots (sum_k p_k v_k - y)^2
Continuous references (a phone's mean expert score, completeness) are used as they are.
An optional cross-entropy term on the answer's template tokens keeps the format:
    L = L_FA + ce_weight * L_CE(template).
"""

from __future__ import annotations

import torch

from apa.data.scales import ZERO_TO_TEN
from apa.models.forward import hidden_states, logits, slot_hidden
from apa.models.score_tokens import score_token_ids
from apa.objectives.base import Objective, ObjectiveOutput, target_log_probs


def expected_scores(class_logits: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    """sum_k softmax(logits)_k * k over the allowed classes; (n, 11) logits and mask -> (n,)."""
    probs = torch.softmax(class_logits.float().masked_fill(~allowed, float("-inf")), dim=-1)
    values = torch.tensor(ZERO_TO_TEN, dtype=probs.dtype, device=probs.device)
    return probs @ values


def fair_average_loss(class_logits: torch.Tensor, allowed: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean of (sum_k p_k v_k - y)^2 over the slots."""
    return torch.mean((expected_scores(class_logits, allowed) - targets.float()) ** 2)


class FairAverage(Objective):
    name = "fa"
    masks_slots = True
    decoding = "slots"

    def __init__(self, ce_weight: float = 0.0):
        super().__init__()
        self.ce_weight = ce_weight
        self.register_buffer("class_ids", torch.zeros(len(ZERO_TO_TEN), dtype=torch.long), persistent=False)

    def setup(self, model, tokenizer, prompt) -> list[str]:
        self.class_ids = torch.tensor(score_token_ids(tokenizer, prompt.vocabulary))
        return []

    def forward(self, model, batch) -> ObjectiveOutput:
        hidden = hidden_states(model, batch)
        at_slots, valid = slot_hidden(hidden, batch)
        class_logits = logits(model, at_slots)[:, self.class_ids.to(at_slots.device)]
        mse = fair_average_loss(class_logits, batch["slot_classes"][valid], batch["slot_targets"][valid])
        metrics = {"fa_mse": mse.detach()}
        loss = mse
        if self.ce_weight:
            log_probs, _ = target_log_probs(model, hidden, batch["labels"])
            ce = -log_probs.mean()
            loss = mse + self.ce_weight * ce
            metrics["ce"] = ce.detach()
        return ObjectiveOutput(loss, metrics)
