"""Target formats: how scores are laid out in the model's answer, and how an answer is read back.

Every format renders a :class:`~apa.data.records.Scores` into text with slots and parses text into
``Scores`` again; parsing is the exact inverse of rendering. Parsing accepts what models really
write (extra spaces and lines, lines in another order, missing lines, labelled scores, JSON inside
prose); a score it cannot attribute with certainty is ``None`` (missing), never guessed. Nothing
that is not a whole number on its own is read as one: ``-3``, ``1,5``, ``1e1`` and ``9,5`` are
missing, not 3, 1 and 5, 1 or 9, and a line or key written twice with different scores is missing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
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


# Labels a model may write before a sentence score (then it is read by label, not by position).
SENTENCE_LABELS = {
    "accuracy": ("accuracy", "acc"),
    "fluency": ("fluency", "flu"),
    "prosodic": ("prosodic", "prosody", "pro"),
    "completeness": ("completeness", "com"),
    "total": ("total", "tot"),
}
LABELLED = re.compile(r"([A-Za-z]+)[:=]?(.*)")  # "Accuracy:", "acc=8", "Fluency"
LIST_PUNCTUATION = ".,;"  # may follow a score in a list ("7, 6, 6." reads 7, 6, 6)


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

    ``phones_by_word`` (ours, not the paper's) writes each word's phones right after the word's
    scores instead of on a line of their own, so the answer walks through the utterance once, in
    the order it was spoken, and a phone's score follows its word::

    Word Scores: {W1}/{Acc}/{Str}/{Tot} [ {P1}/{Acc} {P2}/{Acc} ] {W2}/{Acc}/{Str}/{Tot} [ {P3}/{Acc} ] ...
    """

    sentence_label: str = "Sentence Scores:"
    word_label: str = "Word Scores:"
    phone_label: str = "Phone Scores:"
    word_boundary: str = "-"
    phones_by_word: bool = False

    def _phones_in_word_line(self, aspects: Aspects) -> bool:
        return self.phones_by_word and bool(aspects.get("word")) and bool(aspects.get("phone"))

    def render(self, scores: Scores, aspects: Aspects, vocabulary: ScoreVocabulary) -> Rendered:
        builder = TargetBuilder()
        by_word = self._phones_in_word_line(aspects)
        lines = [
            (self.sentence_label, self._sentence, aspects.get("sentence")),
            (self.word_label, partial(self._words, with_phones=by_word), aspects.get("word")),
            (self.phone_label, self._phones, None if by_word else aspects.get("phone")),
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
    def _words(builder, scores, aspects, vocabulary, with_phones: bool = False) -> None:
        for w, word in enumerate(scores.words):
            builder.text(f" {word.text}")
            for aspect in aspects:
                builder.text("/")
                write_score(builder, vocabulary, "word", aspect, word.aspect(aspect), word=w)
            if with_phones:
                builder.text(" [")
                LineFormat._word_phones(builder, word, w, vocabulary)
                builder.text(" ]")

    def _phones(self, builder, scores, aspects, vocabulary) -> None:
        for w, word in enumerate(scores.words):
            if w:
                builder.text(f" {self.word_boundary}")
            LineFormat._word_phones(builder, word, w, vocabulary)

    @staticmethod
    def _word_phones(builder, word: WordScores, w: int, vocabulary: ScoreVocabulary) -> None:
        """`` P1/{Acc} P2/{Acc}``: one word's phones, each after a space."""
        for p, (phone, label) in enumerate(zip(word.phones, word.phones_accuracy, strict=True)):
            builder.text(f" {phone}/")
            write_score(builder, vocabulary, "phone", "accuracy", label, word=w, phone=p)

    def parse(self, text: str, aspects: Aspects, vocabulary: ScoreVocabulary) -> Scores:
        sentence = self._line(text, self.sentence_label)
        word_line = self._line(text, self.word_label)
        values = {}
        if aspects.get("sentence") and sentence is not None:
            found = sentence_scores(sentence, aspects["sentence"], vocabulary)
            values = {a: native("sentence", a, s) for a, s in found.items()}
        if self._phones_in_word_line(aspects):
            word_line, phone_line = split_word_phones(word_line)
        else:
            phone_line = self._line(text, self.phone_label)
        words = self._parse_words(word_line, aspects.get("word") or (), vocabulary) if aspects.get("word") else None
        phones = self._parse_phones(phone_line, vocabulary) if aspects.get("phone") else None
        return Scores(**values, words=merge_words(words, phones))

    @staticmethod
    def _line(text: str, label: str) -> str | None:
        """The rest of the line that starts with ``label`` (any case, spacing or indentation); None
        if there is none, or several that differ (which one is meant is unknown)."""
        pattern = r"^[ \t]*" + r"\s+".join(map(re.escape, label.split())) + r"(.*)$"
        found = {match.group(1).strip() for match in re.finditer(pattern, text, re.IGNORECASE | re.MULTILINE)}
        return found.pop() if len(found) == 1 else None

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


WORD_PHONES = re.compile(r"([^\s\[\]]+)\s*\[([^\[\]]*)\]")  # "word/8/10/8 [ W/8 ER/7 ]"


def split_word_phones(line: str | None) -> tuple[str | None, str | None]:
    """A word line written with its phones in brackets -> (the words alone, a phone line with '-'
    between words). A line that is not exactly a run of ``word [phones]`` keeps the items outside
    brackets as words (an unclosed bracket takes the rest of the line) and loses its phones
    (missing): which word a stray phone belongs to is unknown."""
    if line is None:
        return None, None
    pairs = list(WORD_PHONES.finditer(line))
    if pairs and not WORD_PHONES.sub("", line).strip():
        return " ".join(m.group(1) for m in pairs), " - ".join(m.group(2).strip() for m in pairs)
    depth, words = 0, []
    for item in re.findall(r"\[|\]|[^\s\[\]]+", line):
        if item in "[]":
            depth = depth + 1 if item == "[" else max(depth - 1, 0)
        elif not depth:
            words.append(item)
    return " ".join(words), None


def sentence_scores(line: str, aspects: Sequence[str], vocabulary: ScoreVocabulary) -> dict[str, float]:
    """The 0-10 scores of a sentence line: by label when the line labels them (``Fluency: 7
    Accuracy: 8``, any order), else by position when there is exactly one per aspect. Anything
    else on the line (an unknown word, ``-3``, ``1,5``) or a label written twice: none is read."""
    if vocabulary.single_token:  # added score tokens delimit themselves: "<|score_8|><|score_7|>"
        line = vocabulary.pattern.sub(lambda match: f" {match.group(0)} ", line)
    labels = {name: aspect for aspect, names in SENTENCE_LABELS.items() for name in names}
    items: list[tuple[str, str | float]] = []
    for token in line.split():
        labelled = LABELLED.fullmatch(token)
        if labelled and labelled.group(1).lower() in labels:
            items.append(("label", labels[labelled.group(1).lower()]))
            token = labelled.group(2)
        if token:
            score = vocabulary.read(token.rstrip(LIST_PUNCTUATION)) if token[0] not in LIST_PUNCTUATION else None
            if score is None:
                return {}
            items.append(("score", score))
    if all(kind == "score" for kind, _ in items):
        return dict(zip(aspects, (s for _, s in items), strict=True)) if len(items) == len(aspects) else {}
    pairs = list(zip(items[::2], items[1::2], strict=False))
    named = [aspect for (kind, aspect), (then, _) in pairs if kind == "label" and then == "score"]
    if len(items) % 2 or len(named) != len(pairs) or len(set(named)) != len(named):
        return {}
    return {aspect: score for (_, aspect), (_, score) in pairs if aspect in aspects}


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
# "key": number, the number ending where a JSON value ends (",", "}" or a closing quote, then the
# next key or the end): 1e1, 9,5 and 8. are not numbers this reads
PAIR = re.compile(
    r"[\"']?([A-Za-z][A-Za-z _-]*?)[\"']?\s*:\s*([\"']?)(-?\d+(?:\.\d+)?)\2(?=\s*(?:\}|,\s*[\"'A-Za-z}]))"
)


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
        """Every aspect found with one value (written once, or always the same); an aspect given
        two different values is missing."""
        by_key = {self.key(a).lower(): a for a in aspects.get("sentence", ())}
        found: dict[str, set[float]] = {}
        for fragment in FRAGMENT.findall(text):
            for key, _, number in PAIR.findall(fragment):
                aspect = by_key.get(key.strip().lower())
                if aspect:
                    found.setdefault(aspect, set()).add(float(number))
        return Scores(**{a: native("sentence", a, v.pop()) if len(v) == 1 else None for a, v in found.items()})
