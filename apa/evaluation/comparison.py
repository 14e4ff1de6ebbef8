"""Compare runs from their folders alone (no W&B needed): one table of metrics with their 95%
intervals, and the paired-bootstrap difference of every run against the first. A folder may be a
run, or hold runs anywhere below it (a sweep's folder, ``outputs/``, ``bench/real_data``).

    python -m apa.compare outputs/train/runs/A outputs/train/runs/B [--metric scc]
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from apa.data.records import Scores, read_scores
from apa.evaluation.metrics import paired_bootstrap
from apa.evaluation.report import COLUMNS, HEADINGS, SHORT, number
from apa.runs import DEV_HISTORY, METRICS, PREDICTIONS, REFERENCES, RUN_CONFIG, UNTRAINED_DIR, read_config_yaml


@dataclass
class Run:
    folder: Path
    name: str
    metrics: dict
    predictions: dict[str, Scores]
    references: dict[str, Scores]
    dev_history: dict | None = None  # every dev evaluation, when the run had a dev split


def load_run(folder: Path) -> Run:
    """A run folder with metrics.json, predictions.json and references.json (what train.py and
    evaluate.py write), and dev_history.json when training scored a dev split."""
    for required in (METRICS, PREDICTIONS, REFERENCES):
        if not (folder / required).is_file():
            raise FileNotFoundError(f"{folder}: no {required}; is this a finished train.py or evaluate.py run?")
    history = folder / DEV_HISTORY
    return Run(
        folder=folder,
        name=run_name(folder),
        metrics=read_metrics(folder / METRICS),
        predictions=read_scores(folder / PREDICTIONS, complete=False)[0],
        references=read_scores(folder / REFERENCES)[0],
        dev_history=json.loads(history.read_text(encoding="utf-8")) if history.is_file() else None,
    )


def run_folders(folder: Path) -> list[Path]:
    """``folder`` if it is a run, else every run below it (a scored folder with its predictions;
    a run's ``untrained/`` baseline is part of its run, not one of its own)."""
    if (folder / METRICS).is_file():
        return [folder]
    found = sorted(
        path.parent
        for path in folder.rglob(METRICS)
        if path.parent.name != UNTRAINED_DIR and (path.parent / PREDICTIONS).is_file()
    )
    if not found:
        raise FileNotFoundError(f"{folder}: no run in it (no {METRICS} beside a {PREDICTIONS})")
    return found


def metric_intervals(runs: list[Run], metric: str, aspects: list[tuple[str, str]]) -> dict[str, dict]:
    """``{"granularity aspect": {run: (value, 95% interval)}}`` for the runs that score each aspect."""
    table = {}
    for g, a in aspects:
        name = f"{g}/{a}/{metric}"
        scored = [r for r in runs if name in r.metrics["metrics"]]
        if scored:
            table[f"{g} {a}"] = {
                r.name: (r.metrics["metrics"][name], r.metrics.get("ci95", {}).get(name)) for r in scored
            }
    return table


def read_metrics(path: Path) -> dict:
    try:
        metrics = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, RecursionError) as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ValueError(f"{path}: not a metrics file apa wrote ({type(error).__name__}: {error})") from error
    if not isinstance(metrics, dict) or not isinstance(metrics.get("metrics"), dict):
        raise ValueError(f"{path}: not a metrics file apa wrote (no 'metrics' object)")
    return metrics


def positive_count(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number of at least 1")
    return int(text)


def run_name(folder: Path) -> str:
    """``objective/prompt`` from the run's resolved config, with the folder's name."""
    config_file = folder / RUN_CONFIG
    if not config_file.is_file():
        return folder.name
    config = read_config_yaml(config_file)
    config = config if isinstance(config, dict) else {}
    objective, prompt = (
        config.get(key) if isinstance(config.get(key), dict) else {} for key in ("objective", "prompt")
    )
    parts = [str(objective.get("_target_", "")).rsplit(".", 1)[-1], str(prompt.get("name", ""))]
    described = " ".join(p for p in parts if p)
    return f"{described} ({folder.name})" if described else folder.name


def _columns(runs: list[Run], metric: str) -> list[tuple[str, str]]:
    return [(g, a) for g, a in COLUMNS if any(f"{g}/{a}/{metric}" in r.metrics["metrics"] for r in runs)]


def comparison_table(runs: list[Run], metric: str = "pcc", resamples: int = 1000, seed: int = 0) -> str:
    if len({frozenset(r.references.items()) for r in runs}) > 1:
        raise ValueError("the runs were scored against different references; compare runs on the same test set")
    columns = _columns(runs, metric)
    header = "| run | " + " | ".join(f"{HEADINGS[g]} {SHORT[a]}" for g, a in columns) + " |"
    lines = [f"{metric.upper()} with 95% bootstrap intervals", "", header, "|---" * (len(columns) + 1) + "|"]
    for run in runs:
        cells = []
        for g, a in columns:
            value = run.metrics["metrics"].get(f"{g}/{a}/{metric}")
            interval = run.metrics.get("ci95", {}).get(f"{g}/{a}/{metric}")
            cells.append(number(value) + (f" [{number(interval[0], 2)}, {number(interval[1], 2)}]" if interval else ""))
        lines.append(f"| {run.name} | " + " | ".join(cells) + " |")
    if len(runs) > 1:
        base = runs[0]
        lines += [
            "",
            f"Difference from {base.name} (paired bootstrap over utterances; p two-sided)",
            "",
            header,
            "|---" * (len(columns) + 1) + "|",
        ]
        for run in runs[1:]:
            result = paired_bootstrap(run.predictions, base.predictions, base.references, resamples, seed)
            cells = []
            for g, a in columns:
                entry = result.get(f"{g}/{a}/{metric}")
                cells.append("-" if entry is None else f"{entry['difference']:+.3f} (p={number(entry['p_value'], 3)})")
            lines.append(f"| {run.name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m apa.compare", description="Compare apa runs: metrics with CIs and paired-bootstrap differences."
    )
    parser.add_argument("runs", nargs="+", type=Path, help="run folders; the first is the baseline")
    parser.add_argument("--metric", default="pcc", choices=["pcc", "scc", "rmse", "sd", "sd_reference"])
    parser.add_argument("--resamples", type=positive_count, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, help="also write the Markdown here")
    args = parser.parse_args(argv)
    try:
        table = comparison_table([load_run(folder) for folder in args.runs], args.metric, args.resamples, args.seed)
    except (FileNotFoundError, ValueError) as error:  # a folder that is not a run, runs that do not compare
        sys.exit(f"apa compare: error: {error}")
    print(table)
    if args.output:
        args.output.write_text(table, encoding="utf-8")
