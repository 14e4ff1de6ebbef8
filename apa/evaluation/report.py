"""Write an evaluation: predictions.json, metrics.json, a Markdown table and plots."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path

from apa.atomic import write_text
from apa.data.records import Scores
from apa.data.scales import ASPECTS
from apa.evaluation.detection import DETECTION_ASPECT, DETECTION_METRICS
from apa.evaluation.metrics import Report, metric_names
from apa.runs import METRICS, REPORT

# The papers' column order: phone, word, then utterance (sentence) aspects.
COLUMNS = (
    [("phone", a) for a in ASPECTS["phone"]]
    + [("word", a) for a in ASPECTS["word"]]
    + [("sentence", a) for a in ASPECTS["sentence"]]
)
HEADINGS = {"phone": "Phone", "word": "Word", "sentence": "Utt"}
SENTENCE_ANALYSES = [name for name in metric_names("sentence") if name not in metric_names("word")]
SHORT = {"accuracy": "Acc", "stress": "Str", "total": "Tot", "fluency": "Flu", "prosodic": "Pro", "completeness": "Com"}


def number(value: float | None, digits: int = 3) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def pcc_before_after(report: Report, untrained: Report | None = None) -> str:
    """Each scored aspect's PCC with its 95% interval, in the papers' column order; with
    ``untrained``, that model's PCC beside it, so the gain of training is visible at a glance."""
    columns = [(g, a) for g, a in COLUMNS if f"{g}/{a}/n" in report.metrics]
    n = {report.metrics[f"{g}/{a}/n"] for g, a in columns if g == "sentence"}
    title = f"PCC on {n.pop()} utterances" if len(n) == 1 else "PCC"
    header = ["aspect", *(["before training"] if untrained else []), "after" if untrained else "PCC", "95% CI"]
    lines = [f"{title}:", "| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for g, a in columns:
        interval = report.ci95.get(f"{g}/{a}/pcc")
        before = [number(untrained.metrics.get(f"{g}/{a}/pcc"))] if untrained else []
        ci = f"[{number(interval[0], 2)}, {number(interval[1], 2)}]" if interval else "-"
        lines.append(f"| {g} {a} | " + " | ".join([*before, number(report.metrics.get(f"{g}/{a}/pcc")), ci]) + " |")
    return "\n".join(lines)


def markdown_table(report: Report) -> str:
    """PCC and SCC (and RMSE, n) per aspect, columns as in the papers' tables; 95% CIs below."""
    columns = [(g, a) for g, a in COLUMNS if f"{g}/{a}/n" in report.metrics]
    if not columns:
        return "No predictions to score.\n"
    header = "| metric | " + " | ".join(f"{HEADINGS[g]} {SHORT[a]}" for g, a in columns) + " |"
    lines = [header, "|---" * (len(columns) + 1) + "|"]
    for metric in ("pcc", "scc", "rmse"):
        cells = []
        for g, a in columns:
            cell = number(report.metrics.get(f"{g}/{a}/{metric}"))
            interval = report.ci95.get(f"{g}/{a}/{metric}")
            cells.append(f"{cell} [{number(interval[0], 2)}, {number(interval[1], 2)}]" if interval else cell)
        lines.append(f"| {metric.upper()} | " + " | ".join(cells) + " |")
    if any(g == "sentence" for g, _ in columns):  # Parikh et al.'s match rates and analyses
        for name in SENTENCE_ANALYSES:
            cells = [number(report.metrics.get(f"{g}/{a}/{name}")) for g, a in columns]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("| n | " + " | ".join(str(report.metrics[f"{g}/{a}/n"]) for g, a in columns) + " |")
    coverage = [report.coverage[f"{g}/{a}"]["rate"] for g, a in columns]
    lines.append("| coverage | " + " | ".join(number(c, 3) for c in coverage) + " |")
    grouped: dict[tuple[str, str], list[str]] = {}
    for name, why in sorted(report.undefined.items()):
        aspect, metric = name.rsplit("/", 1)
        grouped.setdefault((aspect, why), []).append(metric)
    notes = [f"- `{aspect}` {', '.join(metrics)} undefined: {why}" for (aspect, why), metrics in grouped.items()]
    return (
        "\n".join(lines)
        + detection_summary(report)
        + answers_summary(report)
        + "\n\nPCC/SCC/RMSE with 95% bootstrap intervals over utterances; RMSE on the corpus's scales; "
        "exact/within1/within2: share of sentence scores off by < 0.5, <= 1, <= 2; within1_pcc/within2_pcc: "
        "PCC of those within-1/within-2 match indicators with the reference; mean_ref_below7/mean_ref_from7: "
        "mean prediction where the reference is below 7 / 7 or more (Parikh et al.).\n"
        + ("\n" + "\n".join(notes) + "\n" if notes else "")
    )


def detection_summary(report: Report) -> str:
    """Mispronunciation detection in one paragraph (phone accuracy's AUC, and P/R/F1 at the threshold)."""
    key = "/".join(DETECTION_ASPECT)
    metrics = {name: report.metrics.get(f"{key}/{name}") for name in DETECTION_METRICS}
    if metrics["detection_share"] is None:
        return ""

    def shown(name: str) -> str:
        interval = report.ci95.get(f"{key}/{name}")
        return number(metrics[name]) + (f" [{number(interval[0], 2)}, {number(interval[1], 2)}]" if interval else "")

    text = (
        f"\n\nMispronunciation detection: {metrics['detection_share']:.1%} of the phones are mispronounced "
        f"(reference accuracy below {metrics['detection_below']:g}); AUC {shown('detection_auc')}"
    )
    if metrics["detection_threshold"] is None:
        return text + " (no decision threshold, so no precision, recall or F1)."
    return text + (
        f"; flagged when predicted below {metrics['detection_threshold']:.3f}: "
        f"precision {shown('detection_precision')}, recall {shown('detection_recall')}, F1 {shown('detection_f1')}."
    )


def answers_summary(report: Report) -> str:
    """How alike the sentence answers are, in one sentence (nothing without sentence answers)."""
    answers = report.answers
    if not answers:
        return ""

    def most_common(level: str) -> str:
        found = answers[level]
        answer = " ".join(f"{value:g}" for value in found["most_common"])
        return f"{found['distinct']} distinct, the most common ({answer}) for {found['share']:.1%}"

    return (
        f"\n\nSentence answers ({', '.join(answers['aspects'])}) of {answers['n']} utterances: to one decimal "
        f"{most_common('exact')}; rounded to whole points {most_common('rounded')}."
    )


def predictions_json(predictions: Mapping[str, Scores], texts: Mapping[str, str] | None = None) -> dict:
    """Predictions in the speechocean762 scores.json schema (with the reference text if known)."""
    texts = texts or {}
    return {
        uid: ({"text": texts[uid]} if uid in texts else {}) | scores.to_json() for uid, scores in predictions.items()
    }


def write_json(path: Path, data) -> None:
    """``data`` as JSON in ``path``, written whole or not at all."""
    write_text(path, json.dumps(data, indent=1, allow_nan=False) + "\n")


def write_report(output_dir: Path, report: Report, extra: Mapping | None = None) -> dict:
    """``metrics.json`` (no NaN anywhere: undefined values are null with a reason) and ``report.md``."""
    output_dir.mkdir(parents=True, exist_ok=True)
    data = report.to_json() | dict(extra or {})
    write_json(output_dir / METRICS, data)
    (output_dir / REPORT).write_text(markdown_table(report), encoding="utf-8")
    return data
