"""Simulated negatives for SimPO (Wang et al. 2025): a plausible but wrong answer per utterance.

One aspect the prompt asks for is chosen, and one of its scores moves by 2 to 4 classes, up or
down at random; where the end of the scale would leave less than 2 classes of change that way, it
moves the other way instead, so every negative is really 2-4 classes wrong (word stress, whose
only classes are 5 and 10, moves to the other one). The change then flows upwards so the answer stays consistent: a
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
    key, delta = choose_change(rendered, rng)
    return apply_change(scores, rendered, key, delta)


def choose_change(rendered: Rendered, rng: np.random.Generator) -> tuple[tuple, float]:
    """The slot to make wrong, keyed by (granularity, aspect, word, phone), and its change in classes."""
    classes = quantized(rendered)
    groups = sorted({(g, a) for g, a, _, _ in classes})
    granularity, aspect = groups[rng.integers(len(groups))]
    places = [key for key in classes if key[:2] == (granularity, aspect)]
    key = places[rng.integers(len(places))]
    shift = SHIFTS[rng.integers(len(SHIFTS))] * (1 if rng.random() < 0.5 else -1)
    return key, _shifted(classes[key], shift, scale_of(granularity, aspect).classes) - classes[key]


def apply_change(scores: Scores, rendered: Rendered, key: tuple, delta: float) -> Scores:
    """``scores`` with the slot ``key`` moved by ``delta`` classes and the change flowed upwards."""
    classes = quantized(rendered)
    changed = {key: delta, **_propagate(key, delta, scores, classes)}
    negative = scores
    for (g, a, w, p), value in _apply(classes, changed).items():
        negative = negative.with_value(g, a, scale_of(g, a).to_native(value), word=w, phone=p)
    return negative


def _shifted(old: float, shift: int, allowed: Sequence[int]) -> float:
    """The class nearest ``old + shift`` on that side of ``old``, if that is at least
    ``SHIFTS[0]`` classes away; else the one nearest ``old - shift`` on the other side (a 0-10
    scale always has room for 4 one way). A two-class scale gives its other class."""
    moves = []
    for direction in (shift, -shift):
        candidates = [c for c in allowed if (c - old) * direction > 0]
        if candidates:
            moves.append(_clip(old + direction, candidates))
    if not moves:
        raise ValueError(f"a scale with the single class {old} cannot be perturbed")
    return next((new for new in moves if abs(new - old) >= SHIFTS[0]), max(moves, key=lambda new: abs(new - old)))


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
