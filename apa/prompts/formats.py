"""Target formats: how scores are laid out in the model's answer, and how an answer is read back.

Every format renders a :class:`~apa.data.records.Scores` into text with slots and parses text into
``Scores`` again; parsing is the exact inverse of rendering. Parsing accepts what models really
write (extra spaces and lines, lines in another order, missing lines, JSON inside prose); a score it
cannot attribute with certainty is ``None`` (missing), never guessed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from apa.data.records import Scores, WordScores
from apa.data.scales import scale_of
from apa.prompts.slots import Rendered, TargetBuilder
from apa.prompts.vocabulary import ScoreVocabulary

Aspects = Mapping[str, Sequence[str]]  # granularity -> aspects the prompt asks for


class TargetFormat(Protocol):
    def render(self, scores: Scores, aspects: Aspects, vocabulary: ScoreVocabulary) -> Rendered: ...

    def parse(self, text: str, aspects: Aspects, vocabulary: ScoreVocabulary) -> Scores: ...


def write_score(builder: TargetBuilder, vocabulary: ScoreVocabulary, granularity, aspect, label, **where) -> None:
    if label is None:
        place = " ".join(f"{k} {v}" for k, v in where.items())
        raise ValueError(f"cannot render a target without the {granularity} {aspect} label ({place})".strip())
    score_class = scale_of(granularity, aspect).nearest_class(label)
    builder.score(vocabulary.write(score_class), granularity, aspect, label, score_class, **where)


def native(granularity: str, aspect: str, score: float | None) -> float | None:
    """A parsed 0-10 score on the corpus's scale; out-of-range answers count as missing."""
    if score is None or not 0 <= score <= 10:
        return None
    return scale_of(granularity, aspect).to_native(score)


@dataclass(frozen=True)
class LineFormat:
    """Wang et al.'s multi-granularity answer, one line per granularity the prompt asks for::

    Sentence Scores: {Acc} {Flu} {Pro} {Com} {Tot}
    Word Scores: {W1}/{Acc}/{Str}/{Tot} {W2}/{Acc}/{Str}/{Tot} ...
    Phone Scores: {P1}/{Acc} {P2}/{Acc} - {P3}/{Acc} ...      ('-' between words)
    """

    sentence_label: str = "Sentence Scores:"
    word_label: str = "Word Scores:"
    phone_label: str = "Phone Scores:"
    word_boundary: str = "-"

    def render(self, scores: Scores, aspects: Aspects, vocabulary: ScoreVocabulary) -> Rendered:
        builder = TargetBuilder()
        lines = [
            (self.sentence_label, self._sentence, aspects.get("sentence")),
            (self.word_label, self._words, aspects.get("word")),
            (self.phone_label, self._phones, aspects.get("phone")),
        ]
        for label, render_line, line_aspects in lines:
            if line_aspects:
                if builder.length:
                    builder.text("\n")
                builder.text(label)
                render_line(builder, scores, line_aspects, vocabulary)
        return builder.build()

    @staticmethod
    def _sentence(builder, scores, aspects, vocabulary) -> None:
        for aspect in aspects:
            builder.text(" ")
            write_score(builder, vocabulary, "sentence", aspect, scores.aspect(aspect))

    @staticmethod
    def _words(builder, scores, aspects, vocabulary) -> None:
        for w, word in enumerate(scores.words):
            builder.text(f" {word.text}")
            for aspect in aspects:
                builder.text("/")
                write_score(builder, vocabulary, "word", aspect, word.aspect(aspect), word=w)

    def _phones(self, builder, scores, aspects, vocabulary) -> None:
        for w, word in enumerate(scores.words):
            if w:
                builder.text(f" {self.word_boundary}")
            for p, (phone, label) in enumerate(zip(word.phones, word.phones_accuracy, strict=True)):
                builder.text(f" {phone}/")
                write_score(builder, vocabulary, "phone", "accuracy", label, word=w, phone=p)

    def parse(self, text: str, aspects: Aspects, vocabulary: ScoreVocabulary) -> Scores:
        sentence = self._line(text, self.sentence_label)
        word_line = self._line(text, self.word_label)
        phone_line = self._line(text, self.phone_label)
        values = {}
        if aspects.get("sentence") and sentence is not None:
            found = [float(m.group(1)) for m in vocabulary.pattern.finditer(sentence)]
            if len(found) == len(aspects["sentence"]):  # otherwise no score can be attributed
                values = {a: native("sentence", a, s) for a, s in zip(aspects["sentence"], found, strict=True)}
        words = self._parse_words(word_line, aspects.get("word") or (), vocabulary) if aspects.get("word") else None
        phones = self._parse_phones(phone_line, vocabulary) if aspects.get("phone") else None
        return Scores(**values, words=merge_words(words, phones))

    @staticmethod
    def _line(text: str, label: str) -> str | None:
        """The rest of the first line that starts with ``label`` (any case, spacing or indentation)."""
        pattern = r"^[ \t]*" + r"\s+".join(map(re.escape, label.split())) + r"(.*)$"
        match = re.search(pattern, text, re.IGNORECASE | re.MULTILINE)
        return match.group(1).strip() if match else None

    @staticmethod
    def _parse_words(line: str | None, aspects: Sequence[str], vocabulary: ScoreVocabulary) -> list[WordScores]:
        words = []
        for item in (line or "").split():
            text, *written = item.split("/")
            scores = [vocabulary.read(s) for s in written] if len(written) == len(aspects) else [None] * len(aspects)
            words.append(WordScores(text, **{a: native("word", a, s) for a, s in zip(aspects, scores, strict=True)}))
        return words

    def _parse_phones(self, line: str | None, vocabulary: ScoreVocabulary) -> list[list[tuple[str, float | None]]]:
        groups: list[list[tuple[str, float | None]]] = [[]] if line and line.strip() else []
        for item in (line or "").split():
            if item == self.word_boundary:
                groups.append([])
                continue
            phone, slash, written = item.rpartition("/")
            score = vocabulary.read(written) if slash else None
            groups[-1].append((phone if slash else item, native("phone", "accuracy", score)))
        return groups


def merge_words(words: list[WordScores] | None, phones: list[list[tuple]] | None) -> tuple[WordScores, ...]:
    """Attach phone groups to words by position when they pair up one to one. Without a word
    line the words are known by position only (empty text); if the counts differ, which group
    belongs to which word is unknown and the phones are left out (missing)."""
    if phones is None:
        return tuple(words or ())
    if words is None:
        words = [WordScores("") for _ in phones]
    if len(words) != len(phones):
        return tuple(words)
    return tuple(
        WordScores(
            word.text,
            word.accuracy,
            word.stress,
            word.total,
            phones=tuple(p for p, _ in group),
            phones_accuracy=tuple(s for _, s in group),
        )
        for word, group in zip(words, phones, strict=True)
    )


FRAGMENT = re.compile(r"\{[^{}]*\}")
PAIR = re.compile(r"[\"']?([A-Za-z][A-Za-z _-]*?)[\"']?\s*:\s*[\"']?(-?\d+(?:\.\d+)?)")


@dataclass(frozen=True)
class JsonFormat:
    """Parikh et al.'s zero-shot answer: a JSON object of sentence scores, e.g.
    ``{"accuracy": 8, "fluency": 7, "prosody": 7, "completeness": 10}``. Parsing reads dict-like
    fragments anywhere in the answer (as their regex did); a field it cannot find is missing."""

    keys: Mapping[str, str] = field(default_factory=dict)  # aspect -> JSON key, when they differ

    def key(self, aspect: str) -> str:
        return self.keys.get(aspect, aspect)

    def render(self, scores: Scores, aspects: Aspects, vocabulary: ScoreVocabulary) -> Rendered:
        builder = TargetBuilder()
        builder.text("{")
        for i, aspect in enumerate(aspects.get("sentence", ())):
            builder.text(("" if i == 0 else ", ") + json.dumps(self.key(aspect)) + ": ")
            write_score(builder, vocabulary, "sentence", aspect, scores.aspect(aspect))
        builder.text("}")
        return builder.build()

    def parse(self, text: str, aspects: Aspects, vocabulary: ScoreVocabulary) -> Scores:
        by_key = {self.key(a).lower(): a for a in aspects.get("sentence", ())}
        values: dict[str, float | None] = {}
        for fragment in FRAGMENT.findall(text):
            for key, number in PAIR.findall(fragment):
                aspect = by_key.get(key.strip().lower())
                if aspect and aspect not in values:
                    values[aspect] = native("sentence", aspect, float(number))
        return Scores(**values)
