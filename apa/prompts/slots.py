"""A rendered target: its text and its score slots (docs/architecture.md section 2)."""

from __future__ import annotations

from dataclasses import dataclass, field

from apa.data.records import Scores, WordScores
from apa.data.scales import scale_of


@dataclass(frozen=True)
class Slot:
    """One score in a target text: what it scores, its label and where it is written."""

    granularity: str  # sentence | word | phone
    aspect: str
    word: int | None  # word index (word and phone slots)
    phone: int | None  # phone index within the word (phone slots)
    label: float  # the reference on the corpus's native scale (continuous labels kept)
    score_class: int  # the class written in the text (0-10 scale)
    start: int  # character span of the written score in the target text
    end: int

    @property
    def key(self) -> tuple[str, str, int | None, int | None]:
        return self.granularity, self.aspect, self.word, self.phone

    @property
    def target(self) -> float:
        """The label on the 0-10 score scale: what an expected score is compared with."""
        return scale_of(self.granularity, self.aspect).to_score(self.label)

    @property
    def classes(self) -> tuple[int, ...]:
        return scale_of(self.granularity, self.aspect).classes


@dataclass(frozen=True)
class Rendered:
    text: str
    slots: tuple[Slot, ...]


@dataclass
class TargetBuilder:
    """Appends text and scores, recording each score's slot."""

    parts: list[str] = field(default_factory=list)
    slots: list[Slot] = field(default_factory=list)
    length: int = 0

    def text(self, text: str) -> None:
        self.parts.append(text)
        self.length += len(text)

    def score(self, written: str, granularity, aspect, label, score_class, word=None, phone=None) -> None:
        start = self.length
        self.text(written)
        self.slots.append(Slot(granularity, aspect, word, phone, label, score_class, start, self.length))

    def build(self) -> Rendered:
        return Rendered("".join(self.parts), tuple(self.slots))


def slot_tokens(rendered: Rendered, offsets: list[tuple[int, int]]) -> list[list[int]]:
    """For each slot, the indices of the tokens that overlap its characters, given the tokenizer's
    character offsets of the target's tokens (``return_offsets_mapping``)."""
    return [
        [i for i, (start, end) in enumerate(offsets) if start < slot.end and slot.start < end]
        for slot in rendered.slots
    ]


def blank(scores: Scores) -> Scores:
    """The same words and phones with every score 0: a template to render without any label."""
    words = tuple(WordScores(w.text, 0, 0, 0, w.phones, tuple(0 for _ in w.phones_accuracy)) for w in scores.words)
    return Scores(0, 0, 0, 0, 0, words)


def fill(template: Scores, slots: tuple[Slot, ...], scores: list[float | None]) -> Scores:
    """A prediction: ``template``'s words and phones with each slot's score (0-10 scale) in place,
    converted to the native scale; everything the slots do not cover is ``None``."""
    with_words = any(slot.granularity != "sentence" for slot in slots)
    words = tuple(WordScores(w.text, phones=w.phones, phones_accuracy=(None,) * len(w.phones)) for w in template.words)
    filled = Scores(words=words if with_words else ())
    for slot, score in zip(slots, scores, strict=True):
        native = None if score is None else scale_of(slot.granularity, slot.aspect).to_native(score)
        filled = filled.with_value(slot.granularity, slot.aspect, native, word=slot.word, phone=slot.phone)
    return filled
