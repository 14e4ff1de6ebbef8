"""One utterance's scores for people: sentence scores, then each word with its phones, low scores
highlighted. The same renderables print in a terminal (``apa score``) and as HTML in a notebook.

A score is *low* at or below 60% of its scale (6 of 10, 1.2 of a phone's 2: the cut of Parikh et
al.'s low-score analysis) and *fair* up to 80%. Low scores are red and marked ``!`` so that they
stand out without colour too (a pipe, a file, the README). Given a mispronunciation threshold (the
one a run's dev split chose, :mod:`apa.evaluation.detection`), each phone predicted below it is
marked ``*``: the sounds to practise.
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
FLAG_MARK = "*"


def flag_legend(flag_below: float) -> str:
    return f"{FLAG_MARK} mispronounced: phone predicted below {flag_below:.2f}, the run's detection threshold"


def flagged(value: float | None, flag_below: float | None) -> bool:
    """Whether a phone predicted ``value`` is flagged as mispronounced at ``flag_below``."""
    return value is not None and flag_below is not None and value < flag_below


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


def phone_text(phone: str, value: float | None, flag_below: float | None) -> Text:
    mark = Text(FLAG_MARK, style=STYLES["low"]) if flagged(value, flag_below) else ""
    return Text.assemble(f"{phone} ", score_text("phone", "accuracy", value), mark)


def words_table(scores: Scores, flag_below: float | None = None) -> Table:
    table = Table(title="words (0-10) and phones (0-2)", title_justify="left")
    table.add_column("word")
    for aspect in ASPECTS["word"]:
        table.add_column(aspect, justify="right")
    table.add_column("phones")
    for word in scores.words:
        phones = Text(" ").join(
            phone_text(phone, value, flag_below) for phone, value in zip(word.phones, word.phones_accuracy, strict=True)
        )
        table.add_row(word.text, *(score_text("word", a, word.aspect(a)) for a in ASPECTS["word"]), phones)
    return table


def utterance_view(uid: str, text: str, scores: Scores, flag_below: float | None = None) -> Group:
    """Everything known about one utterance's scores (phones flagged below ``flag_below``, if given)."""
    parts: list[RenderableType] = [Text.assemble((uid, "bold"), f'  "{text}"'), sentence_table(scores)]
    if scores.words:
        parts.append(words_table(scores, flag_below))
    parts.append(Text(LEGEND, style="dim"))
    if flag_below is not None and scores.words:
        parts.append(Text(flag_legend(flag_below), style="dim"))
    return Group(*parts)


def recordings_table(scores: Mapping[str, Scores], texts: Mapping[str, str], flag_below: float | None = None) -> Table:
    """One row per utterance: its sentence scores, how many of its words and phones are low (and, with
    ``flag_below``, how many phones are flagged as mispronounced), its text."""
    table = Table(title="sentence scores (0-10); low words and phones", title_justify="left")
    table.add_column("id", no_wrap=True)
    for aspect in ASPECTS["sentence"]:
        table.add_column(SHORT[aspect], justify="right", no_wrap=True, min_width=5)
    table.add_column("low\nwords", justify="right", no_wrap=True, min_width=5)
    table.add_column("low\nphones", justify="right", no_wrap=True, min_width=6)
    if flag_below is not None:
        table.add_column(f"{FLAG_MARK} phones\n< {flag_below:.2f}", justify="right", no_wrap=True, min_width=7)
    table.add_column("text")
    for uid, prediction in scores.items():
        phones = [p for w in prediction.words for p in w.phones_accuracy]
        table.add_row(
            uid,
            *(score_text("sentence", a, prediction.aspect(a)) for a in ASPECTS["sentence"]),
            str(low_count("word", [w.accuracy for w in prediction.words])),
            str(low_count("phone", phones)),
            *([str(sum(flagged(p, flag_below) for p in phones))] if flag_below is not None else []),
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
