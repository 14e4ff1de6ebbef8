"""Decoding strategies: from a model and utterances to predicted scores.

- :class:`GenerationDecoder`: free greedy generation, then parsing (what the papers did; for
  models trained with ``ce`` or ``simpo_ce`` and for zero-shot). Batched with left padding. An
  answer that cannot be parsed gives missing scores, counted by the evaluator.
- :class:`SlotDecoder`: the answer's template is known from the reference text, so only the
  slots are read (docs/architecture.md section 2), ``soft`` (expected class value) or ``hard`` (argmax).
  For models trained on masked slots (``fa``) every slot is read in one batched forward pass;
  otherwise slots are read left to right, each argmax fed back before the next (one short
  incremental step per slot, with the key-value cache).
- :class:`RegressionDecoder`: the regression head at every masked slot, one pass.

Audio longer than 30 s is decoded chunk by chunk and the chunks' scores are averaged.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm
from transformers import DynamicCache, ProcessorMixin

from apa.data.features import ChunkFeatures, FeatureTable
from apa.data.records import Scores, Utterance, WordScores
from apa.data.scales import ASPECTS, ZERO_TO_TEN
from apa.evaluation.pairing import align
from apa.models.batching import Collator
from apa.models.encoding import Encoded, PromptEncoder
from apa.models.forward import (
    embed,
    encode_audio,
    hidden_states,
    input_embeddings,
    logits,
    qwen2_audio,
    slot_hidden,
    text_generator,
)
from apa.models.heads import get_head
from apa.models.lora import merged_adapter
from apa.models.score_tokens import read_classes, score_token_ids
from apa.prompts import Prompt, Rendered
from apa.prompts.slots import blank, fill
from apa.runs import Decoding


@dataclass(frozen=True)
class Prediction:
    scores: Scores
    answer: str | None = None  # the generated text (free generation only)


@dataclass(frozen=True)
class Item:
    utterance: Utterance
    chunk: ChunkFeatures


def items(utterances: list[Utterance], features: FeatureTable) -> list[Item]:
    """Every chunk of every utterance, shortest text first, so that a batch holds prompts and answers
    of like lengths (less padding; a generating batch stops with its longest answer). The sort is
    stable and the key the utterance's, so each utterance's chunks stay in order."""
    by_length = sorted(utterances, key=lambda u: len(u.text))
    return [Item(u, chunk) for u in by_length for chunk in features.chunks(u.id)]


def _mean(values) -> float | None:
    present = [v for v in values if v is not None]
    return float(np.mean(present)) if present else None


def average(chunks: list[Scores]) -> Scores:
    """Chunk predictions of one utterance averaged value by value (missing values left out).

    The words of the first chunk are the result's. Each is averaged with the word it pairs with in
    every other chunk (by position when the word sequences agree, else by text, as the evaluator
    pairs words with the reference); a word that some chunk lacks is kept with missing scores. A
    word's phones are averaged when every chunk has the same number of phones for it, else they are
    missing. Missing scores are counted by the evaluator, never guessed.
    """
    first = chunks[0]
    if len(chunks) == 1:
        return first
    matches = [_paired_words(first.words, c.words) for c in chunks[1:]]
    words = tuple(
        _average_word(word, [c.words[m[w]] for c, m in zip(chunks[1:], matches, strict=True) if w in m], len(chunks))
        for w, word in enumerate(first.words)
    )
    sentence = {a: _mean(c.aspect(a) for c in chunks) for a in ASPECTS["sentence"]}
    return Scores(**sentence, words=words)


def _paired_words(first: tuple[WordScores, ...], other: tuple[WordScores, ...]) -> dict[int, int]:
    """Index in ``other`` of each of ``first``'s words. Words without text (phone-only answers)
    can pair only by position, so only when both chunks have as many."""
    texts, other_texts = [w.text for w in first], [w.text for w in other]
    if len(first) != len(other) and not (all(texts) and all(other_texts)):
        return {}
    return dict(align(texts, other_texts))


def _average_word(word: WordScores, others: list[WordScores], n_chunks: int) -> WordScores:
    """``word`` averaged with its counterparts in the other chunks; missing unless all have one."""
    if len(others) != n_chunks - 1:
        return WordScores(word.text, phones=word.phones, phones_accuracy=(None,) * len(word.phones_accuracy))
    group = [word, *others]
    same_phones = all(len(w.phones_accuracy) == len(word.phones_accuracy) for w in group)
    phones = (
        tuple(_mean(w.phones_accuracy[p] for w in group) for p in range(len(word.phones_accuracy)))
        if same_phones
        else (None,) * len(word.phones_accuracy)
    )
    return WordScores(
        word.text,
        **{a: _mean(w.aspect(a) for w in group) for a in ASPECTS["word"]},
        phones=word.phones,
        phones_accuracy=phones,
    )


def combined(chunks: list[Prediction]) -> Prediction:
    """One utterance's prediction from its chunks': scores averaged, answers joined."""
    return Prediction(average([p.scores for p in chunks]), "\n---\n".join(p.answer or "" for p in chunks) or None)


def batches(sequence: list, size: int, description: str) -> Iterator[list]:
    for start in tqdm(range(0, len(sequence), size), desc=description, unit="batch"):
        yield sequence[start : start + size]


class Decoder:
    """Base class: ``predict`` decodes every chunk of every utterance and averages the chunks, with
    the model's adapters merged into its weights meanwhile."""

    name: ClassVar[str]

    def __init__(self, batch_size: int = 8):
        self.batch_size = batch_size

    @torch.no_grad()
    def predict(
        self,
        model: nn.Module,
        processor: ProcessorMixin,
        prompt: Prompt,
        utterances: list[Utterance],
        features: FeatureTable,
    ) -> dict[str, Prediction]:
        model.eval()
        decoded: dict[str, list[Prediction]] = {}
        with merged_adapter(model):
            for batch in batches(items(utterances, features), self.batch_size, f"Decoding ({self.name})"):
                for item, prediction in zip(batch, self.decode(model, processor, prompt, batch), strict=True):
                    decoded.setdefault(item.utterance.id, []).append(prediction)
        return {u.id: combined(decoded[u.id]) for u in utterances if u.id in decoded}  # in their order

    def decode(self, model, processor, prompt, batch: list[Item]) -> list[Prediction]:
        raise NotImplementedError


def _collate(processor, prompt: Prompt, rows: list[Encoded], batch: list[Item], padding_side: str = "right"):
    collate = Collator(processor.tokenizer.pad_token_id, prompt.aspect_names, padding_side=padding_side)
    return collate(rows, [item.chunk for item in batch], list(range(len(batch))))


class GenerationDecoder(Decoder):
    name = "generate"

    def __init__(self, batch_size: int = 8, max_new_tokens: int = 512):
        super().__init__(batch_size)
        self.max_new_tokens = max_new_tokens

    def decode(self, model, processor, prompt, batch):
        tokenizer = processor.tokenizer
        inputs = prompt_inputs(model, processor, prompt, batch)
        stop_ids = end_of_answer_ids(tokenizer, PromptEncoder(tokenizer, prompt))  # none: cut at the limit
        generated = text_generator(model).generate(  # from embeddings: the output is the new tokens only
            inputs_embeds=input_embeddings(model, inputs),
            attention_mask=inputs["attention_mask"],
            max_new_tokens=self.max_new_tokens,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=stop_ids,
        )
        answers = tokenizer.batch_decode(generated, skip_special_tokens=True)
        cut = ~torch.isin(generated, torch.tensor(stop_ids, device=generated.device)).any(dim=-1)
        return [Prediction(prompt.parse(answer, cut=bool(c)), answer) for answer, c in zip(answers, cut, strict=True)]


def prompt_inputs(model, processor, prompt: Prompt, batch: list[Item]) -> dict[str, torch.Tensor]:
    """The batch's prompts (no answers) left-padded, with their audio, on the model's device."""
    encoder = PromptEncoder(processor.tokenizer, prompt)
    rows = [
        Encoded(tuple(ids), len(ids), Rendered("", ()), ())
        for ids in (encoder.prompt_ids(item.utterance, item.chunk.mel_frames) for item in batch)
    ]
    return to_device(_collate(processor, prompt, rows, batch, padding_side="left"), model)


def end_of_answer_ids(tokenizer, encoder: PromptEncoder) -> list[int]:
    ids = {tokenizer.eos_token_id, *tokenizer(encoder.end_of_turn, add_special_tokens=False)["input_ids"][:1]}
    return sorted(i for i in ids if i is not None)


def to_device(inputs: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    device = model.get_input_embeddings().weight.device
    return {name: tensor.to(device) for name, tensor in inputs.items()}


def templates(encoder: PromptEncoder, batch: list[Item]) -> list[Encoded]:
    """Each item's answer rendered from blank scores: the template, with slots to read."""
    return [encoder.encode(item.utterance, item.chunk.mel_frames, blank(item.utterance.scores)) for item in batch]


class SlotDecoder(Decoder):
    name = "slots"
    READOUTS = ("soft", "hard")

    def __init__(self, batch_size: int = 8, readout: str = "soft", masked_slots: bool = False):
        """``masked_slots``: the model was trained with every slot masked, so all are read in one
        pass (else left to right); :func:`decoder_for` sets it from a run's objective."""
        super().__init__(batch_size)
        if readout not in self.READOUTS:
            raise ValueError(f"decoding.readout={readout!r} is not one of {', '.join(self.READOUTS)}")
        self.readout = readout
        self.masked_slots = masked_slots

    def decode(self, model, processor, prompt, batch):
        if not prompt.vocabulary.single_token:
            raise ValueError(f"slot decoding reads one token per score class; prompt {prompt.name} writes digits")
        class_ids = torch.tensor(score_token_ids(processor.tokenizer, prompt.vocabulary))
        encoder = PromptEncoder(processor.tokenizer, prompt, masked_slots=self.masked_slots)
        rows = templates(encoder, batch)
        if self.masked_slots:
            return self._one_pass(model, processor, prompt, rows, batch, class_ids)
        return [self._left_to_right(model, row, item, class_ids) for row, item in zip(rows, batch, strict=True)]

    def _one_pass(self, model, processor, prompt, rows, batch, class_ids):
        inputs = to_device(_collate(processor, prompt, rows, batch), model)
        hidden = hidden_states(model, inputs)
        predictions = []
        for r, (row, item) in enumerate(zip(rows, batch, strict=True)):
            positions = torch.tensor(row.slot_positions, device=hidden.device) - 1
            class_logits = logits(model, hidden[r, positions])[:, class_ids.to(hidden.device)]
            allowed = inputs["slot_classes"][r, : len(positions)]
            scores, _ = read_classes(class_logits, allowed, self.readout)
            predictions.append(Prediction(fill(blank(item.utterance.scores), row.rendered.slots, scores.tolist())))
        return predictions

    def _left_to_right(self, model, row: Encoded, item: Item, class_ids: torch.Tensor) -> Prediction:
        device = model.get_input_embeddings().weight.device
        features = torch.from_numpy(item.chunk.features)[None].to(device)
        frames = torch.zeros((1, features.shape[-1]), dtype=torch.long, device=device)
        frames[0, : item.chunk.mel_frames] = 1
        audio = encode_audio(model, features, frames)
        language_model = qwen2_audio(model).model.language_model
        ids, cache, start, scores = list(row.input_ids), DynamicCache(), 0, []
        for slot, position in zip(row.rendered.slots, row.slot_positions, strict=True):
            chunk = torch.tensor([ids[start:position]], device=device)
            embedded = embed(model, chunk, audio, torch.zeros(1, dtype=torch.long))
            hidden = language_model(inputs_embeds=embedded, past_key_values=cache, use_cache=True).last_hidden_state
            allowed = torch.zeros(1, len(ZERO_TO_TEN), dtype=torch.bool, device=device)
            allowed[0, list(slot.classes)] = True
            score, best = read_classes(logits(model, hidden[:, -1])[:, class_ids.to(device)], allowed, self.readout)
            scores.append(score.item())
            ids[position] = int(class_ids[best.item()])
            start = position
        return Prediction(fill(blank(item.utterance.scores), row.rendered.slots, scores))


class RegressionDecoder(Decoder):
    name = "regression"

    def decode(self, model, processor, prompt, batch):
        encoder = PromptEncoder(processor.tokenizer, prompt, masked_slots=True)
        rows = templates(encoder, batch)
        inputs = to_device(_collate(processor, prompt, rows, batch), model)
        at_slots, valid = slot_hidden(hidden_states(model, inputs), inputs)
        predicted = (10 * get_head(model)(at_slots, inputs["slot_aspects"][valid])).clamp(0, 10).tolist()
        predictions, start = [], 0
        for row, item in zip(rows, batch, strict=True):
            n = len(row.slot_positions)
            predictions.append(
                Prediction(fill(blank(item.utterance.scores), row.rendered.slots, predicted[start : start + n]))
            )
            start += n
        return predictions


DECODERS: dict[str, type[Decoder]] = {d.name: d for d in (GenerationDecoder, SlotDecoder, RegressionDecoder)}


def decoder_for(decoding: Decoding, chosen: Decoder | None = None) -> Decoder:
    """The decoder of a model trained as ``decoding`` says: ``chosen`` (a ``decoding=`` config) if
    given, else the one its objective implies; a slot decoder reads the slots masked exactly when
    they were masked in training, whoever chose it."""
    decoder = copy.copy(chosen) if chosen is not None else DECODERS[decoding.decoder]()
    if isinstance(decoder, SlotDecoder):
        decoder.masked_slots = decoding.masked_slots
    return decoder
