"""The objective interface: a loss as a module, plugged into the trainer's ``compute_loss``.

An objective receives the (LoRA-wrapped) model and a collated batch and returns the loss with its
parts, detached, for logging (torchtune's loss-as-module + TRL's ``compute_loss(model, inputs)``).
Class flags tell the data pipeline what the objective needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from apa.models.batching import IGNORE
from apa.models.encoding import check_one_token_per_score
from apa.models.forward import logits, slot_coordinates
from apa.prompts import Prompt


@dataclass
class ObjectiveOutput:
    loss: torch.Tensor
    metrics: dict[str, torch.Tensor] = field(default_factory=dict)  # detached parts, logged as train/<name>


class Objective(nn.Module):
    """Base class: ``forward(model, batch) -> ObjectiveOutput``."""

    name: ClassVar[str]
    decoding: ClassVar[str] = "generate"  # how its models are read: a strategy of apa.evaluation.decoders
    redraw_negatives: bool = False  # a pairwise objective's negatives drawn anew every epoch (seeded)
    needs_pairs: ClassVar[bool] = False  # batches pair chosen and rejected answers (chosen_rows, rejected_rows)
    masked_slots: ClassVar[bool] = False  # slots hold <|score_mask|> and are read in one pass

    @classmethod
    def reads(cls, masked_slots: bool) -> str:
        """The decoding strategy for this objective's models: a model trained on masked slots never
        saw its own scores in context, so free generation cannot follow it and its slots are read
        in one pass; otherwise the class's own."""
        return "slots" if masked_slots and cls.decoding == "generate" else cls.decoding

    def check(self, prompt: Prompt) -> None:
        """Refuse a prompt this objective cannot train on (before any model is loaded)."""
        if self.masked_slots:
            check_one_token_per_score(prompt, f"objective {self.name}")

    def setup(self, model: nn.Module, tokenizer: PreTrainedTokenizerBase, prompt: Prompt) -> list[str]:
        """Prepare the unwrapped model before LoRA; returns extra module names to train and save."""
        return []

    def forward(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> ObjectiveOutput:
        raise NotImplementedError


def answer_cross_entropy(model: nn.Module, hidden: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """-(1/N) sum_t log p(y_t | x, y_<t) over the N labelled answer tokens of the batch (Wang et al.'s
    fine-tuning loss; at masked slots there is no label, so only the template's tokens count)."""
    log_probs, _ = target_log_probs(model, hidden, labels)
    return -log_probs.mean()


def labelled_slots(batch: dict[str, torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
    """For each token :func:`target_log_probs` returns (in its order), whether it is a score slot's
    (first) token rather than the template's."""
    at_slot = torch.zeros_like(batch["input_ids"], dtype=torch.bool)
    at_slot[slot_coordinates(batch)] = True
    return at_slot[:, 1:][labels[:, 1:] != IGNORE]


def check_template_weight(template_weight: float) -> float:
    if isinstance(template_weight, bool) or not isinstance(template_weight, int | float) or template_weight < 0:
        raise ValueError(f"objective.template_weight={template_weight!r}: expected a non-negative number")
    return float(template_weight)


def weighted_cross_entropy(losses: torch.Tensor, at_slot: torch.Tensor, template_weight: float) -> torch.Tensor:
    """The answer's cross-entropy with its template tokens weighted ``template_weight`` against its
    score tokens: (w sum_template l_t + sum_slots l_t) / (w N_template + N_slots); w = 1 is the plain
    mean (Wang et al.'s), w = 0 the score tokens' alone."""
    weights = torch.where(at_slot, 1.0, template_weight).to(losses.dtype)
    return (weights * losses).sum() / weights.sum().clamp(min=torch.finfo(losses.dtype).tiny)


def gold_at_slots(batch: dict[str, torch.Tensor], class_ids: torch.Tensor) -> torch.Tensor:
    """The batch's labels with each slot's written class token as its label: where slots were fed
    as ``<|score_mask|>`` (the collator leaves them unlabelled) the gold class is still learnt."""
    labels = batch["labels"].clone()
    labels[slot_coordinates(batch)] = class_ids.to(labels.device)[batch["slot_written"][batch["slot_valid"]]]
    return labels


def target_log_probs(model: nn.Module, hidden: torch.Tensor, labels: torch.Tensor, source: torch.Tensor | None = None):
    """Log-probabilities of the labelled tokens, flattened (row-major), with the row each belongs to.

    Position t predicts token t+1, so the hidden state before every labelled token is read.
    ``source`` maps each row of ``labels`` to its row of ``hidden`` (default: the same row): rows
    fed the same tokens share one row of hidden states, and each position's log-softmax over the
    vocabulary is computed once however many rows read a label there.
    """
    targets = labels[:, 1:]
    rows, positions = (targets != IGNORE).nonzero(as_tuple=True)
    sources = rows if source is None else source.to(rows.device)[rows]
    needed = torch.zeros(len(hidden), targets.shape[1], dtype=torch.bool, device=hidden.device)
    needed[sources, positions] = True
    index = torch.full(needed.shape, -1, dtype=torch.long, device=hidden.device)
    index[needed] = torch.arange(int(needed.sum()), device=hidden.device)
    log_probs = torch.log_softmax(logits(model, hidden[:, :-1][needed]).float(), dim=-1)
    return log_probs[index[sources, positions], targets[rows, positions]], rows
