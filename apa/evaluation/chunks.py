"""Audio over 30 s is decoded chunk by chunk; this averages the chunks' scores into one utterance's.

The encoder of Qwen2-Audio sees at most 30 s, so a longer recording is cut into chunks
(:mod:`apa.data.features`), each decoded on its own with the whole answer; the utterance's scores
are their average, value by value. Missing values are left out, never guessed.
"""

from __future__ import annotations

import numpy as np

from apa.data.records import Scores, WordScores
from apa.data.scales import ASPECTS
from apa.evaluation.pairing import align


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
