"""Pair predicted scores with reference scores, item by item, before any metric is computed.

Words are paired by position when the predicted word sequence is the reference's (or carries no
text, as phone-only answers do, and has the same length); otherwise they are aligned by their
text (longest matching blocks). Phones within a paired word follow the same rule on their
symbols. A reference item with no paired prediction, or a prediction of ``None``, is missing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from difflib import SequenceMatcher

import numpy as np

from apa.data.records import Scores, WordScores
from apa.data.scales import ASPECTS


@dataclass
class Pairs:
    """Predictions and references of one granularity/aspect, with the utterance of each pair."""

    predicted: list[float] = field(default_factory=list)
    reference: list[float] = field(default_factory=list)
    utterance: list[int] = field(default_factory=list)  # index into the list of utterance ids
    item: list[str] = field(default_factory=list)  # what each pair scores ("uid word 2 (CAT)")
    missing: list[str] = field(default_factory=list)  # reference items without a prediction

    def add(self, predicted: float | None, reference: float | None, utterance: int, where: str) -> None:
        if reference is None:
            return
        if predicted is None:
            self.missing.append(where)
        else:
            self.predicted.append(float(predicted))
            self.reference.append(float(reference))
            self.utterance.append(utterance)
            self.item.append(where)

    def select(self, rows: list[int]) -> Pairs:
        return Pairs(
            [self.predicted[i] for i in rows],
            [self.reference[i] for i in rows],
            [self.utterance[i] for i in rows],
            [self.item[i] for i in rows],
        )

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return np.asarray(self.predicted), np.asarray(self.reference), np.asarray(self.utterance, dtype=int)


def align(predicted: list[str], reference: list[str]) -> list[tuple[int, int]]:
    """Index pairs (predicted, reference): by position when the sequences agree, else by text;
    none when the predictions carry no text and their count differs (which is which is unknown)."""
    same_length = len(predicted) == len(reference)
    if same_length and all(p == "" or p.upper() == r.upper() for p, r in zip(predicted, reference, strict=True)):
        return [(i, i) for i in range(len(reference))]
    if all(p == "" for p in predicted):
        return []
    matcher = SequenceMatcher(a=[p.upper() for p in predicted], b=[r.upper() for r in reference], autojunk=False)
    return [(b.a + k, b.b + k) for b in matcher.get_matching_blocks() for k in range(b.size)]


def predicted_aspects(predictions: Mapping[str, Scores]) -> set[tuple[str, str]]:
    """The granularity/aspect pairs a system predicts anywhere (those it omits are not scored)."""
    found = set()
    for scores in predictions.values():
        found |= {("sentence", a) for a in ASPECTS["sentence"] if scores.aspect(a) is not None}
        for word in scores.words:
            found |= {("word", a) for a in ASPECTS["word"] if word.aspect(a) is not None}
            if any(p is not None for p in word.phones_accuracy):
                found.add(("phone", "accuracy"))
    return found


def pair_scores(
    predictions: Mapping[str, Scores], references: Mapping[str, Scores], aspects: set[tuple[str, str]] | None = None
) -> dict[tuple[str, str], Pairs]:
    """Pairs for every predicted aspect, over every reference utterance (in the references' order)."""
    aspects = predicted_aspects(predictions) if aspects is None else aspects
    pairs = {key: Pairs() for key in sorted(aspects)}
    for u, (uid, reference) in enumerate(references.items()):
        prediction = predictions.get(uid, Scores())
        for aspect in ASPECTS["sentence"]:
            if ("sentence", aspect) in pairs:
                pairs["sentence", aspect].add(prediction.aspect(aspect), reference.aspect(aspect), u, uid)
        _pair_words(prediction.words, reference.words, pairs, u, uid)
    return pairs


def _pair_words(predicted: tuple[WordScores, ...], reference: tuple[WordScores, ...], pairs, u: int, uid: str):
    matched = {r: p for p, r in align([w.text for w in predicted], [w.text for w in reference])}
    for r, ref_word in enumerate(reference):
        word = predicted[matched[r]] if r in matched else WordScores(ref_word.text)
        where = f"{uid} word {r} ({ref_word.text})"
        for aspect in ASPECTS["word"]:
            if ("word", aspect) in pairs:
                pairs["word", aspect].add(word.aspect(aspect), ref_word.aspect(aspect), u, where)
        if ("phone", "accuracy") in pairs:
            phones = {q: p for p, q in align(list(word.phones), list(ref_word.phones))}
            for q, ref_score in enumerate(ref_word.phones_accuracy):
                score = word.phones_accuracy[phones[q]] if q in phones else None
                pairs["phone", "accuracy"].add(score, ref_score, u, f"{where} phone {q} ({ref_word.phones[q]})")
