"""One utterance's scores for people: sentence scores, then each word with its phones, low scores
highlighted. The same renderables print in a terminal (``apa score``) and as HTML in a notebook.

A score is *low* at or below 60% of its scale (6 of 10, 1.2 of a phone's 2: the cut of Parikh et
al.'s low-score analysis) and *fair* up to 80%. Low scores are red and marked ``!`` so that they
stand out without colour too (a pipe, a file, the README).
"""

from __future__ import annotations

import io
from collections.abc import Mapping

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from apa.data.records import Scores
from apa.data.scales import ASPECTS, scale_of
from apa.evaluation.report import SHORT

LOW_SHARE = 0.6
FAIR_SHARE = 0.8
STYLES = {"low": "bold red", "fair": "yellow", "good": "green"}
LOW_MARK = "!"
LEGEND = (
    f"{LOW_MARK} low: at most {LOW_SHARE:.0%} of the scale ({LOW_SHARE * 10:g} of 10, {LOW_SHARE * 2:g} of a phone's 2)"
)


def level(granularity: str, aspect: str, value: float) -> str:
    """``low``, ``fair`` or ``good``: where ``value`` sits on its scale."""
    share = value / scale_of(granularity, aspect).native_max
    return "low" if share <= LOW_SHARE else "fair" if share <= FAIR_SHARE else "good"


def score_text(granularity: str, aspect: str, value: float | None) -> Text:
    """One score, one decimal, coloured by its level; ``-`` when it was not predicted."""
    if value is None:
        return Text("-", style="dim")
    grade = level(granularity, aspect, value)
    return Text(f"{value:.1f}" + (LOW_MARK if grade == "low" else ""), style=STYLES[grade])


def sentence_table(scores: Scores) -> Table:
    table = Table(title="sentence (0-10)", title_justify="left")
    for aspect in ASPECTS["sentence"]:
        table.add_column(aspect, justify="right")
    table.add_row(*(score_text("sentence", a, scores.aspect(a)) for a in ASPECTS["sentence"]))
    return table


def words_table(scores: Scores) -> Table:
    table = Table(title="words (0-10) and phones (0-2)", title_justify="left")
    table.add_column("word")
    for aspect in ASPECTS["word"]:
        table.add_column(aspect, justify="right")
    table.add_column("phones")
    for word in scores.words:
        phones = Text(" ").join(
            Text.assemble(f"{phone} ", score_text("phone", "accuracy", value))
            for phone, value in zip(word.phones, word.phones_accuracy, strict=True)
        )
        table.add_row(word.text, *(score_text("word", a, word.aspect(a)) for a in ASPECTS["word"]), phones)
    return table


def utterance_view(uid: str, text: str, scores: Scores) -> Group:
    """Everything known about one utterance's scores."""
    parts: list[RenderableType] = [Text.assemble((uid, "bold"), f'  "{text}"'), sentence_table(scores)]
    if scores.words:
        parts.append(words_table(scores))
    parts.append(Text(LEGEND, style="dim"))
    return Group(*parts)


def recordings_table(scores: Mapping[str, Scores], texts: Mapping[str, str]) -> Table:
    """One row per utterance: its sentence scores, how many of its words and phones are low, its text."""
    table = Table(title="sentence scores (0-10); low words and phones", title_justify="left")
    table.add_column("id", no_wrap=True)
    for aspect in ASPECTS["sentence"]:
        table.add_column(SHORT[aspect], justify="right", no_wrap=True, min_width=5)
    table.add_column("low\nwords", justify="right", no_wrap=True, min_width=5)
    table.add_column("low\nphones", justify="right", no_wrap=True, min_width=6)
    table.add_column("text")
    for uid, prediction in scores.items():
        table.add_row(
            uid,
            *(score_text("sentence", a, prediction.aspect(a)) for a in ASPECTS["sentence"]),
            str(low_count("word", [w.accuracy for w in prediction.words])),
            str(low_count("phone", [p for w in prediction.words for p in w.phones_accuracy])),
            texts.get(uid, ""),
        )
    return table


def low_count(granularity: str, accuracies: list[float | None]) -> int:
    """How many of these word or phone accuracy scores are low (missing ones are not)."""
    return sum(value is not None and level(granularity, "accuracy", value) == "low" for value in accuracies)


def as_html(renderable: RenderableType, width: int = 120) -> str:
    """The renderable as a self-contained HTML fragment with its colours (for notebooks)."""
    console = Console(record=True, file=io.StringIO(), width=width, force_terminal=True, color_system="truecolor")
    console.print(renderable)
    return console.export_html(inline_styles=True, code_format='<pre style="font-family:monospace">{code}</pre>')
