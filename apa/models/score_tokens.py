"""Install a prompt's score tokens in a model: one new token per score class.

The new rows of the input embeddings and of the (untied) LM head start as the digits' rows
("10" as the mean of "1" and "0"), so the model begins with what it knows about numbers; LoRA
then trains only those rows (PEFT ``trainable_token_indices``).
"""

from __future__ import annotations

import logging

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from apa.data.scales import ZERO_TO_TEN
from apa.prompts.vocabulary import ScoreVocabulary

log = logging.getLogger(__name__)


def score_token_ids(tokenizer: PreTrainedTokenizerBase, vocabulary: ScoreVocabulary) -> list[int]:
    """Ids of the class tokens, class 0 to 10, or an error if they are not installed."""
    ids = tokenizer.convert_tokens_to_ids(vocabulary.new_tokens)
    if tokenizer.unk_token_id is not None and tokenizer.unk_token_id in ids:
        raise KeyError(f"score tokens {vocabulary.new_tokens} are not in the tokenizer; call add_score_tokens first")
    return ids


def add_score_tokens(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, vocabulary: ScoreVocabulary
) -> list[int]:
    """Add the vocabulary's class tokens (if new) and initialise their embeddings; returns their ids."""
    tokens = vocabulary.new_tokens
    if not tokens:
        return []
    added = tokenizer.add_tokens(tokens)
    ids = score_token_ids(tokenizer, vocabulary)
    if added == 0:
        return ids  # already installed (and maybe trained): leave the rows alone
    if max(ids) >= model.get_input_embeddings().weight.shape[0]:
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    layers = [model.get_input_embeddings(), model.get_output_embeddings()]
    if layers[1].weight is layers[0].weight:  # tied embeddings: one matrix
        layers.pop()
    with torch.no_grad():
        for score_class, new_id in zip(ZERO_TO_TEN, ids, strict=True):
            digits = tokenizer.encode(str(score_class), add_special_tokens=False)
            for layer in layers:
                layer.weight[new_id] = layer.weight[digits].mean(dim=0)
    log.info("added %d score tokens (ids %d-%d), initialised from the digits", added, ids[0], ids[-1])
    return ids
