"""Simulated negatives for SimPO (Wang et al. 2025): a plausible but wrong answer per utterance.

One aspect the prompt asks for is chosen, and one of its scores moves by 2 to 4 classes (clipped to
the scale, never staying put). The change then flows upwards so the answer stays consistent: a
phone's change moves its word's accuracy by its share of the word, a word's accuracy change moves
the sentence accuracy by its share of the sentence, and every total moves by the mean change of
its parts. Everything happens on the score classes the prompt writes, then returns to the native
scales; the result is deterministic for a seed and an utterance id.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence

import numpy as np

from apa.data.records import Scores
from apa.data.scales import scale_of
from apa.prompts.slots import Rendered

SHIFTS = (2, 3, 4)
SENTENCE_TOTAL_PARTS = ("accuracy", "fluency", "prosodic", "completeness")
WORD_TOTAL_PARTS = ("accuracy", "stress")


def negative_rng(seed: int, utterance_id: str) -> np.random.Generator:
    """The generator for one utterance's negative: stable across processes and runs."""
    return np.random.default_rng([seed, zlib.crc32(utterance_id.encode())])


def quantized(rendered: Rendered) -> dict[tuple, float]:
    """Every slot's written class, keyed by (granularity, aspect, word, phone)."""
    return {slot.key: float(slot.score_class) for slot in rendered.slots}


def perturb(scores: Scores, rendered: Rendered, rng: np.random.Generator) -> Scores:
    """A negative for ``scores`` whose target is ``rendered`` (the prompt's answer for them)."""
    classes = quantized(rendered)
    groups = sorted({(g, a) for g, a, _, _ in classes})
    granularity, aspect = groups[rng.integers(len(groups))]
    places = [key for key in classes if key[:2] == (granularity, aspect)]
    key = places[rng.integers(len(places))]
    old = classes[key]
    shift = SHIFTS[rng.integers(len(SHIFTS))] * (1 if rng.random() < 0.5 else -1)
    new = _shifted(old, shift, scale_of(granularity, aspect).classes)
    changed = {key: new - old, **_propagate(key, new - old, scores, classes)}

    negative = scores
    for (g, a, w, p), value in _apply(classes, changed).items():
        negative = negative.with_value(g, a, scale_of(g, a).to_native(value), word=w, phone=p)
    return negative


def _shifted(old: float, shift: int, allowed: Sequence[int]) -> float:
    """The class nearest ``old + shift`` on that side of ``old``; the other side at a scale's end."""
    for direction in (shift, -shift):
        candidates = [c for c in allowed if (c - old) * direction > 0]
        if candidates:
            return _clip(old + direction, candidates)
    raise ValueError(f"a scale with the single class {old} cannot be perturbed")


def _clip(value: float, allowed: Sequence[int]) -> float:
    return float(min(allowed, key=lambda c: (abs(c - value), c)))


def _propagate(key, delta, scores, classes) -> dict[tuple, float]:
    """The changes a single change implies upwards (in score units, before rounding)."""
    granularity, aspect, word, _ = key
    changes: dict[tuple, float] = {}

    def move(target, amount):
        if target in classes and amount:
            changes[target] = changes.get(target, 0.0) + amount

    n_words = max(len(scores.words), 1)
    if granularity == "phone":
        word_delta = delta / len(scores.words[word].phones)
        move(("word", "accuracy", word, None), word_delta)
        move(("word", "total", word, None), word_delta / len(WORD_TOTAL_PARTS))
        sentence_delta = word_delta / n_words
        move(("sentence", "accuracy", None, None), sentence_delta)
        move(("sentence", "total", None, None), sentence_delta / len(SENTENCE_TOTAL_PARTS))
    elif granularity == "word" and aspect in WORD_TOTAL_PARTS:
        move(("word", "total", word, None), delta / len(WORD_TOTAL_PARTS))
        if aspect == "accuracy":
            move(("sentence", "accuracy", None, None), delta / n_words)
            move(("sentence", "total", None, None), delta / n_words / len(SENTENCE_TOTAL_PARTS))
    elif granularity == "sentence" and aspect in SENTENCE_TOTAL_PARTS:
        move(("sentence", "total", None, None), delta / len(SENTENCE_TOTAL_PARTS))
    return changes


def _apply(classes: dict[tuple, float], changes: dict[tuple, float]) -> dict[tuple, float]:
    """New classes for every place the prompt writes: changed ones rounded and clipped."""
    result = dict(classes)
    for (g, a, w, p), delta in changes.items():
        whole = math.copysign(math.floor(abs(delta) + 0.5), delta)  # half a class counts, in delta's direction
        result[g, a, w, p] = _clip(classes[g, a, w, p] + whole, scale_of(g, a).classes)
    return result
