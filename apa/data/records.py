"""Typed records for utterances and their scores, and the speechocean762 ``scores.json`` schema.

One structure serves labels and predictions: a prediction is a :class:`Scores` whose unknown
values are ``None`` (and omitted from JSON). Scores stay on the corpus's native scales
(:mod:`apa.data.scales`).

Reading a scores file guesses nothing: a key written twice in one object is dropped with all its
values (which one was meant is unknown) and recorded, keys outside the schema are listed, and a
file that is not UTF-8 JSON is named.
"""

from __future__ import annotations

import difflib
import json
import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple

from apa.data.scales import ASPECTS, SENTENCE_ASPECTS, WORD_ASPECTS, ZERO_TO_TEN, Scale, scale_of

PHONES_ACCURACY_KEY = "phones-accuracy"  # the official schema's spelling
SENTENCE_KEYS = frozenset({*SENTENCE_ASPECTS, "text", "words"})
WORD_KEYS = frozenset({*WORD_ASPECTS, "text", "phones", PHONES_ACCURACY_KEY, "mispronunciations"})
DUPLICATED_KEYS, UNKNOWN_KEYS = "duplicated keys", "unknown keys"  # what reading a scores file ignores


class LabelError(ValueError):
    """A malformed or out-of-range label; the message names the utterance and the field."""


@dataclass(frozen=True)
class WordScores:
    text: str
    accuracy: float | None = None
    stress: float | None = None
    total: float | None = None
    phones: tuple[str, ...] = ()
    phones_accuracy: tuple[float | None, ...] = ()

    def aspect(self, aspect: str) -> float | None:
        return getattr(self, aspect)


@dataclass(frozen=True)
class Scores:
    """Sentence, word and phone scores of one utterance; ``None`` where unknown."""

    accuracy: float | None = None
    fluency: float | None = None
    prosodic: float | None = None
    completeness: float | None = None
    total: float | None = None
    words: tuple[WordScores, ...] = ()

    def aspect(self, aspect: str) -> float | None:
        return getattr(self, aspect)

    def value(self, granularity: str, aspect: str, word: int | None = None, phone: int | None = None):
        """The score at one place: ``("phone", "accuracy", word=2, phone=0)`` and so on."""
        if granularity == "sentence":
            return self.aspect(aspect)
        if granularity == "word":
            return self.words[word].aspect(aspect)
        return self.words[word].phones_accuracy[phone]

    def with_value(self, granularity: str, aspect: str, value, word: int | None = None, phone: int | None = None):
        """A copy with one score replaced (records are immutable)."""
        if granularity == "sentence":
            return replace(self, **{aspect: value})
        words = list(self.words)
        if granularity == "word":
            words[word] = replace(words[word], **{aspect: value})
        else:
            phones = list(words[word].phones_accuracy)
            phones[phone] = value
            words[word] = replace(words[word], phones_accuracy=tuple(phones))
        return replace(self, words=tuple(words))

    def to_json(self) -> dict[str, Any]:
        """The ``scores.json`` schema, leaving out what is unknown."""
        entry: dict[str, Any] = {a: self.aspect(a) for a in SENTENCE_ASPECTS if self.aspect(a) is not None}
        if self.words:
            entry["words"] = [_word_to_json(word) for word in self.words]
        return entry

    @classmethod
    def from_json(cls, entry: Mapping[str, Any], where: str, complete: bool = True) -> Scores:
        """Read and check one utterance's entry. ``complete`` labels must have every score;
        predictions (``complete=False``) may leave any out."""
        if not isinstance(entry, Mapping):
            raise LabelError(f"{where}: expected an object with scores, got {type(entry).__name__}")
        words = entry.get("words", [] if not complete else None)
        if not isinstance(words, list):
            raise LabelError(f"{where}: 'words' must be a list of word objects")
        return cls(
            **{a: _score(entry, a, ("sentence", a), where, complete) for a in SENTENCE_ASPECTS},
            words=tuple(_word_from_json(word, f"{where} word {i}", complete) for i, word in enumerate(words)),
        )


@dataclass(frozen=True)
class Utterance:
    """One recording with its reference text and labels, as every corpus reader returns it."""

    id: str
    text: str
    audio: Path | bytes = field(repr=False)  # a file, or the encoded file's bytes (hub datasets)
    scores: Scores
    speaker: str | None = None
    age: int | None = None
    gender: str | None = None

    @property
    def words(self) -> tuple[str, ...]:
        return tuple(word.text for word in self.scores.words)


class JsonObject(dict):
    """A JSON object without the keys it wrote more than once (``duplicated``)."""

    duplicated: tuple[str, ...] = ()


def _json_object(pairs: list[tuple[str, Any]]) -> JsonObject:
    counts = Counter(key for key, _ in pairs)
    entry = JsonObject((key, value) for key, value in pairs if counts[key] == 1)
    entry.duplicated = tuple(sorted(key for key, count in counts.items() if count > 1))
    return entry


def read_text(path: Path, error: type[ValueError] = LabelError) -> str:
    """A text file that must be UTF-8 (a Latin-1 or UTF-16 export, say, is named as ``error``, not
    garbled); a byte-order mark some editors write first is dropped, not read as part of the text."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as decoding:
        raise error(f"{path}: not UTF-8 text ({decoding}); save it as UTF-8") from decoding


MAX_JSON_DEPTH = 16  # utterance -> words -> word -> phones: 5 levels; deeper is not a scores file


def nesting_depth(value: Any) -> int:
    """How many objects and lists deep ``value`` is (iteratively: any depth is measured)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, Mapping) else item if isinstance(item, list) else None
        if children is not None:
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in children)
    return deepest


def read_entries(path: Path, missing: str = "no such scores file") -> JsonObject:
    """The raw entries of a scores.json-schema file, keyed by utterance id; keys written twice
    are left out, and recorded for :func:`duplicated_keys`."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: {missing}")
    too_deep = f"{path}: nested over {MAX_JSON_DEPTH} levels deep; a scores file is 5 levels deep"
    try:
        entries = json.loads(read_text(path), object_pairs_hook=_json_object)
    except json.JSONDecodeError as error:
        raise LabelError(f"{path}: not valid JSON ({error})") from error
    except RecursionError:  # deeper than Python's recursion limit
        raise LabelError(too_deep) from None
    if nesting_depth(entries) > MAX_JSON_DEPTH:
        raise LabelError(too_deep)
    if not isinstance(entries, dict):
        raise LabelError(f"{path}: expected an object keyed by utterance id, got {type(entries).__name__}")
    return entries


def duplicated_keys(value: Any, where: str) -> list[str]:
    """Every key written more than once in ``value`` or anything inside it, with its place."""
    found = [f"{where}: {key!r} appears more than once" for key in getattr(value, "duplicated", ())]
    if isinstance(value, Mapping):
        for key, item in value.items():
            found += duplicated_keys(item, f"{where} {key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += duplicated_keys(item, f"{where}[{i}]")
    return found


def unknown_keys(entry: Any, where: str) -> list[str]:
    """Keys of an utterance's entry, or of its words, that the scores.json schema does not have
    (a misspelt ``acuracy`` would otherwise leave its column silently empty)."""
    if not isinstance(entry, Mapping):
        return []
    found = _unknown(entry, SENTENCE_KEYS, where)
    words = entry.get("words")
    for i, word in enumerate(words if isinstance(words, list) else []):
        if isinstance(word, Mapping):
            found += _unknown(word, WORD_KEYS, f"{where} words[{i}]")
    return found


def _unknown(entry: Mapping[str, Any], known: frozenset[str], where: str) -> list[str]:
    found = []
    for key in sorted(set(entry) - known):
        close = difflib.get_close_matches(key, known, n=1)
        found.append(f"{where}: unknown key {key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    return found


class ScoresFile(NamedTuple):
    scores: dict[str, Scores]
    texts: dict[str, str]
    ignored: dict[str, list[str]]  # DUPLICATED_KEYS / UNKNOWN_KEYS -> what was left out, with its place


def read_scores(path: str | Path, complete: bool = True) -> ScoresFile:
    """A file in the scores.json schema: scores and texts by utterance id, and what was ignored.
    Labels (``complete``) must be unambiguous: a duplicated key is an error. Predictions may leave
    scores out; their duplicated keys are left out too (missing), and listed."""
    path = Path(path)
    entries = read_entries(path)
    duplicated = duplicated_keys(entries, str(path))
    if duplicated and complete:
        raise LabelError(f"{len(duplicated)} duplicated keys in labels:\n  " + "\n  ".join(duplicated))
    scores = {uid: Scores.from_json(entry, f"{path} {uid}", complete) for uid, entry in entries.items()}
    texts = {uid: entry["text"] for uid, entry in entries.items() if isinstance(entry.get("text"), str)}
    unknown = [problem for uid, entry in entries.items() for problem in unknown_keys(entry, f"{path} {uid}")]
    ignored = {name: found for name, found in ((DUPLICATED_KEYS, duplicated), (UNKNOWN_KEYS, unknown)) if found}
    return ScoresFile(scores, texts, ignored)


def _word_to_json(word: WordScores) -> dict[str, Any]:
    entry: dict[str, Any] = {"text": word.text}
    entry.update({a: word.aspect(a) for a in WORD_ASPECTS if word.aspect(a) is not None})
    if word.phones:
        entry["phones"] = list(word.phones)
    if any(score is not None for score in word.phones_accuracy):
        entry[PHONES_ACCURACY_KEY] = list(word.phones_accuracy)
    return entry


def _word_from_json(entry: Any, where: str, complete: bool) -> WordScores:
    if not isinstance(entry, Mapping) or not isinstance(entry.get("text"), str):
        raise LabelError(f"{where}: expected an object with a 'text' string")
    where = f"{where} ({entry['text']!r})"
    phones = entry.get("phones", None if complete else [])
    if not isinstance(phones, list) or not all(isinstance(p, str) for p in phones):
        raise LabelError(f"{where}: 'phones' must be a list of phone symbols")
    accuracies = entry.get(PHONES_ACCURACY_KEY, None if complete else [None] * len(phones))
    if not isinstance(accuracies, list):
        raise LabelError(f"{where}: '{PHONES_ACCURACY_KEY}' must be a list of numbers")
    if len(accuracies) != len(phones):
        raise LabelError(
            f"{where}: {len(phones)} phones but {len(accuracies)} '{PHONES_ACCURACY_KEY}' scores; they must pair up"
        )
    phone_scores = tuple(
        _check(score, ("phone", "accuracy"), f"{where} phone {i} ({phones[i]})", complete)
        for i, score in enumerate(accuracies)
    )
    return WordScores(
        text=entry["text"],
        **{a: _score(entry, a, ("word", a), where, complete) for a in ASPECTS["word"]},
        phones=tuple(phones),
        phones_accuracy=phone_scores,
    )


def _score(entry: Mapping[str, Any], key: str, place: tuple[str, str], where: str, complete: bool):
    if key not in entry and complete:
        raise LabelError(f"{where}: missing score '{key}'")
    return _check(entry.get(key), place, f"{where} '{key}'", complete)


def _check(value: Any, place: tuple[str, str], where: str, complete: bool) -> float | None:
    if value is None and not complete:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise LabelError(f"{where}: expected a number, got {value!r}")
    scale = scale_of(*place)
    if not scale.contains(value):
        raise LabelError(f"{where}: {value} is outside the {place[0]} {place[1]} scale 0-{scale.native_max:g}")
    allowed = _only_labels(scale)
    if complete and allowed and value not in allowed:
        shown = " or ".join(f"{a:g}" for a in allowed)
        raise LabelError(f"{where}: {value} is not a {place[0]} {place[1]} label (the corpus marks only {shown})")
    return value


def _only_labels(scale: Scale) -> tuple[float, ...]:
    """The only values a label may take on a scale with only some classes (word stress: right, 10,
    or wrong, 5); empty when any value on the scale is a label. Predictions may fall in between."""
    return () if scale.classes == ZERO_TO_TEN else tuple(scale.to_native(c) for c in scale.classes)
