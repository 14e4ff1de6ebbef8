"""Score scales: the one place that knows each aspect's native range and its 0-10 score classes.

Records keep the corpus's native scale (speechocean762 phones 0-2, everything else 0-10).
Prompts, objectives and decoders work with *score classes* on a 0-10 scale (Wang et al. map
phones linearly, x5); metrics convert back to the native scale before scoring.
"""

from __future__ import annotations

from dataclasses import dataclass

GRANULARITIES = ("sentence", "word", "phone")
SENTENCE_ASPECTS = ("accuracy", "fluency", "prosodic", "completeness", "total")
WORD_ASPECTS = ("accuracy", "stress", "total")
PHONE_ASPECTS = ("accuracy",)
ASPECTS = {"sentence": SENTENCE_ASPECTS, "word": WORD_ASPECTS, "phone": PHONE_ASPECTS}

ZERO_TO_TEN = tuple(range(11))


@dataclass(frozen=True)
class Scale:
    """Labels run from 0 to ``native_max``; ``classes`` are the score classes on the 0-10 scale."""

    native_max: float
    classes: tuple[int, ...] = ZERO_TO_TEN

    @property
    def factor(self) -> float:
        return 10 / self.native_max

    def to_score(self, native: float) -> float:
        return native * self.factor

    def to_native(self, score: float) -> float:
        return score / self.factor

    def nearest_class(self, native: float) -> int:
        """The score class closest to a native label (ties go to the lower class)."""
        score = self.to_score(native)
        return min(self.classes, key=lambda c: (abs(c - score), c))

    def contains(self, native: float) -> bool:
        return 0 <= native <= self.native_max


SCALES: dict[tuple[str, str], Scale] = {
    **{("sentence", aspect): Scale(10) for aspect in SENTENCE_ASPECTS},
    ("word", "accuracy"): Scale(10),
    ("word", "stress"): Scale(10, classes=(5, 10)),  # speechocean762 marks stress right (10) or wrong (5)
    ("word", "total"): Scale(10),
    ("phone", "accuracy"): Scale(2),
}


def scale_of(granularity: str, aspect: str) -> Scale:
    try:
        return SCALES[granularity, aspect]
    except KeyError:
        known = ", ".join(f"{g}/{a}" for g, a in SCALES)
        raise KeyError(f"no score scale for {granularity}/{aspect}; known: {known}") from None
