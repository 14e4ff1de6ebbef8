"""Install a prompt's score tokens in a model: one new token per score class; and read a score
from the class tokens' logits at a slot, the arithmetic fair-average training and slot decoding share.

The new rows of the input embeddings and of the (untied) LM head start as the digits' rows
("10" as the mean of "1" and "0"; the slot mask as the mean of all digits), so the model begins
with what it knows about numbers; LoRA then trains only those rows (PEFT
``trainable_token_indices``).
"""

from __future__ import annotations

import logging

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from apa.data.scales import ZERO_TO_TEN
from apa.prompts.vocabulary import MASK_TOKEN, ScoreVocabulary

log = logging.getLogger(__name__)


def token_ids(tokenizer: PreTrainedTokenizerBase, tokens: list[str]) -> list[int]:
    ids = tokenizer.convert_tokens_to_ids(tokens)
    if any(i is None or i == tokenizer.unk_token_id for i in ids) or any(
        len(tokenizer.tokenize(t)) != 1 for t in tokens
    ):
        raise KeyError(f"score tokens {tokens} are not in the tokenizer; call add_score_tokens first")
    return ids


def score_token_ids(tokenizer: PreTrainedTokenizerBase, vocabulary: ScoreVocabulary) -> list[int]:
    """Ids of the class tokens, class 0 to 10 (empty for digits)."""
    return token_ids(tokenizer, vocabulary.class_tokens) if vocabulary.single_token else []


def mask_token_id(tokenizer: PreTrainedTokenizerBase) -> int:
    return token_ids(tokenizer, [MASK_TOKEN])[0]


def read_classes(
    class_logits: torch.Tensor, allowed: torch.Tensor, readout: str = "soft"
) -> tuple[torch.Tensor, torch.Tensor]:
    """(score on the 0-10 scale per slot, argmax class per slot) from (n, 11) class logits, over
    the classes each slot's scale allows: ``soft`` reads the expected class value sum_k p_k k
    (what fair-average training fits, so differentiable), ``hard`` the most likely class."""
    probs = torch.softmax(class_logits.float().masked_fill(~allowed, float("-inf")), dim=-1)
    best = probs.argmax(dim=-1)
    values = torch.tensor(ZERO_TO_TEN, dtype=probs.dtype, device=probs.device)
    return (probs @ values if readout == "soft" else values[best]), best


def add_score_tokens(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, vocabulary: ScoreVocabulary
) -> list[int]:
    """Add the vocabulary's class tokens (if new) and initialise their embeddings; returns their ids."""
    tokens = vocabulary.new_tokens
    if not tokens:
        return []
    added = tokenizer.add_tokens(tokens)
    ids = token_ids(tokenizer, tokens)
    if added == 0:
        return ids  # already installed (and maybe trained): leave the rows alone
    if max(ids) >= model.get_input_embeddings().weight.shape[0]:
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    layers = [model.get_input_embeddings(), model.get_output_embeddings()]
    if layers[1].weight is layers[0].weight:  # tied embeddings: one matrix
        layers.pop()
    digit_ids = [tokenizer.encode(str(c), add_special_tokens=False) for c in ZERO_TO_TEN]
    all_digits = [digit for ids_ in digit_ids[:10] for digit in ids_]
    sources = [*digit_ids, all_digits]  # the classes, then the slot mask
    with torch.no_grad():
        for new_id, source in zip(ids, sources, strict=True):
            for layer in layers:
                layer.weight[new_id] = layer.weight[source].mean(dim=0)
    log.info("added %d score tokens (ids %d-%d), initialised from the digits", added, ids[0], ids[-1])
    return ids
