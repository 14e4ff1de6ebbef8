"""SimPO with a cross-entropy anchor (Wang et al. 2025; Meng et al. 2024).

Each example has a chosen answer y+ (the reference) and a rejected one y- (a simulated negative,
:mod:`apa.prompts.negatives`). With r(y) the mean token log-likelihood of y and dr = r(y+) - r(y-),
    L = L_SimPO + lambda * L_CE(y+)          (beta=0.1, gamma=0.5, lambda=0.1: Wang et al.)
where the margin gamma enters L_SimPO by one of two conventions (``margin_convention``):
    wang2025 (default):  -log sigmoid(beta * (dr - gamma))   Wang et al.'s equation as printed;
                         the effective margin is beta * gamma (0.05 at their values)
    meng2024:            -log sigmoid(beta * dr - gamma)     the original SimPO (Meng et al. 2024),
                         TRL's CPOTrainer (``simpo_gamma``) and LLaMA-Factory; margin gamma
Both are readings of the same published numbers, so a run names the one it uses. On the ``mini``
model and real speech the paper's recipe answers ``8 8 8 10 8`` for 243 of 300 test utterances
(BENCHMARKS.md): it inherits cross-entropy's copying and greedy mode (:mod:`.cross_entropy`), and a
negative changes one slot of a ~329-token answer, so the answer-mean reward gap is a 329th of that
slot's log-ratio and the margin is never reached; and one fixed negative serves every epoch. Both answers
share the example's single audio encoding. ``masked_slots`` (ours, as for ``ce``): the slots are
fed as ``<|score_mask|>`` in both answers, each keeping its written class as the label, so the
rewards differ only at the labels the negative changed and no slot copies an earlier one. The two
answers are then the same tokens, so the language model runs once per pair (:func:`pair_sources`)
instead of once per answer: on ``mini`` a step then costs what masked ``ce``'s does, against 2.1x
for the paper's recipe (``bench/speed/simpo-shared-forward.json``).
``reward`` (ours): r(y) over the score tokens only, their mean (``slots_mean``) or sum
(``slots_sum``), instead of the whole answer's mean (``answer_mean``, the paper's).
``redraw_negatives`` (ours): each epoch its own simulated negative per utterance (seeded), instead
of one reused every epoch. ``template_weight`` (ours, as for ``ce``): the CE anchor's template
tokens weighted against its score tokens (1: the paper's plain mean). With these fixes and the
paper's lambda = 0.1, ``mini`` learnt the preference before the scores (sentence total PCC 0.685);
with lambda = 1 (``wang2025_simpo_fixed``), 0.771, ce's equal (BENCHMARKS.md).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from apa.models.forward import hidden_states
from apa.models.score_tokens import score_token_ids
from apa.objectives.base import (
    Objective,
    ObjectiveOutput,
    check_template_weight,
    gold_at_slots,
    labelled_slots,
    target_log_probs,
    weighted_cross_entropy,
)

MARGIN_CONVENTIONS = ("wang2025", "meng2024")
REWARDS = ("answer_mean", "slots_mean", "slots_sum")  # the paper's; over the score tokens only (ours)


def check_margin_convention(margin_convention: str) -> None:
    if margin_convention not in MARGIN_CONVENTIONS:
        raise ValueError(
            f"objective.margin_convention={margin_convention!r} is not one of {', '.join(MARGIN_CONVENTIONS)} "
            "(wang2025: -log sigmoid(beta * (dr - gamma)); meng2024: -log sigmoid(beta * dr - gamma))"
        )


def simpo_loss(
    chosen: torch.Tensor, rejected: torch.Tensor, beta: float, gamma: float, margin_convention: str = "wang2025"
) -> torch.Tensor:
    """Per-pair SimPO loss from mean token log-likelihoods, -log sigmoid(logit) = softplus(-logit)
    with logit beta * (r+ - r- - gamma) (wang2025) or beta * (r+ - r-) - gamma (meng2024)."""
    check_margin_convention(margin_convention)
    reward_margin = chosen - rejected
    logit = beta * (reward_margin - gamma) if margin_convention == "wang2025" else beta * reward_margin - gamma
    return F.softplus(-logit)


def sum_and_count_per_row(values: torch.Tensor, rows: torch.Tensor, n_rows: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum of ``values`` per row and how many each row has: the SimPO reward is their ratio per row
    (a mean log-probability), the cross-entropy pools them over the chosen rows."""
    totals = torch.zeros(n_rows, device=values.device, dtype=values.dtype).index_add(0, rows, values)
    counts = torch.zeros(n_rows, device=values.device, dtype=values.dtype).index_add(0, rows, torch.ones_like(values))
    return totals, counts


def pair_sources(batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """The rows the language model has to run on, and for each row of the batch its row among them:
    a rejected row fed the same tokens as its chosen row (masked slots) reads the chosen row's."""
    chosen, rejected = batch["chosen_rows"], batch["rejected_rows"]
    input_ids, attention_mask = batch["input_ids"], batch["attention_mask"]
    if not (
        torch.equal(input_ids[chosen], input_ids[rejected])
        and torch.equal(attention_mask[chosen], attention_mask[rejected])
    ):
        raise ValueError(
            "simpo_ce with masked_slots: a rejected answer's tokens differ from its chosen answer's, "
            "so they cannot share one forward pass (are the score slots fed as <|score_mask|>?)"
        )
    source = torch.arange(len(input_ids), device=input_ids.device)
    source[rejected] = chosen.to(source.device)
    run, row_of = torch.unique(source, return_inverse=True)
    return run, row_of


def rows_of(batch: dict[str, torch.Tensor], rows: torch.Tensor) -> dict[str, torch.Tensor]:
    """The batch restricted to ``rows`` (their tokens and which audio each reads), audio unchanged."""
    return {**batch, **{key: batch[key][rows] for key in ("input_ids", "attention_mask", "audio_index")}}


class SimPOCrossEntropy(Objective):
    name = "simpo_ce"
    needs_pairs = True

    def __init__(
        self,
        beta: float = 0.1,
        gamma: float = 0.5,
        ce_weight: float = 0.1,
        margin_convention: str = "wang2025",
        masked_slots: bool = False,
        reward: str = "answer_mean",
        redraw_negatives: bool = False,
        template_weight: float = 1.0,
    ):
        super().__init__()
        check_margin_convention(margin_convention)
        if reward not in REWARDS:
            raise ValueError(f"objective.reward={reward!r} is not one of {', '.join(REWARDS)}")
        self.reward = reward
        self.template_weight = check_template_weight(template_weight)
        self.redraw_negatives = bool(redraw_negatives)
        self.beta, self.gamma, self.ce_weight = beta, gamma, ce_weight
        self.margin_convention = margin_convention
        self.masked_slots = bool(masked_slots)
        self.decoding = self.reads(self.masked_slots)
        self.register_buffer("class_ids", torch.zeros(0, dtype=torch.long), persistent=False)

    def setup(self, model, tokenizer, prompt) -> list[str]:
        if self.masked_slots:
            self.class_ids = torch.tensor(score_token_ids(tokenizer, prompt.vocabulary))
        return []

    def rewards(self, at_slot, log_probs, rows, totals, counts) -> torch.Tensor:
        """Each row's reward r(y): its answer's mean token log-likelihood (the paper's), or its score
        tokens' mean or sum (a negative changes one slot, so over ~329 answer tokens its reward gap
        is a 329th of that slot's)."""
        if self.reward == "answer_mean":
            return totals / counts
        slot_totals, slot_counts = sum_and_count_per_row(log_probs[at_slot], rows[at_slot], len(totals))
        return slot_totals if self.reward == "slots_sum" else slot_totals / slot_counts.clamp(min=1)

    def answer_log_probs(self, model, batch, labels):
        """:func:`target_log_probs` of every row; with masked slots each pair runs the model once."""
        if not self.masked_slots:
            return target_log_probs(model, hidden_states(model, batch), labels)
        run, row_of = pair_sources(batch)
        return target_log_probs(model, hidden_states(model, rows_of(batch, run)), labels, source=row_of)

    def forward(self, model, batch) -> ObjectiveOutput:
        chosen_rows, rejected_rows = batch.get("chosen_rows"), batch.get("rejected_rows")
        if chosen_rows is None or not len(rejected_rows):
            raise ValueError(
                "simpo_ce needs each chosen answer paired with a rejected one (chosen_rows, rejected_rows)"
            )
        labels = gold_at_slots(batch, self.class_ids) if self.masked_slots else batch["labels"]
        log_probs, rows = self.answer_log_probs(model, batch, labels)
        totals, counts = sum_and_count_per_row(log_probs, rows, len(batch["labels"]))
        at_slot = labelled_slots(batch, labels)
        rewards = self.rewards(at_slot, log_probs, rows, totals, counts)
        chosen, rejected = rewards[chosen_rows], rewards[rejected_rows]
        simpo = simpo_loss(chosen, rejected, self.beta, self.gamma, self.margin_convention).mean()
        in_chosen = torch.isin(rows, chosen_rows.to(rows.device))
        ce = weighted_cross_entropy(-log_probs[in_chosen], at_slot[in_chosen], self.template_weight)
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
