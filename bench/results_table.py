"""BENCHMARKS.md's real-speech results: one table per granularity from the committed runs.

    python -m bench.results_table --add outputs/mini_speechocean762/runs/<time>   # commit a finished run
    python -m bench.results_table --add outputs/evaluate/runs/<time>   # evaluate.py checkpoint=RUN decoding=...
    python -m bench.results_table --add <run> --variant epochs5   # a recipe changed beyond its choices
    python -m bench.results_table            # rewrite the section between the markers
    python -m bench.results_table --print    # only print it

Every folder in ``bench/real_data/`` is a training run's evaluation as train.py wrote it
(``config.yaml``, the test split's ``predictions.json`` and ``references.json``, ``metrics.json``,
``report.md``, ``train.log``) with the overrides it was launched with (Hydra's ``overrides.yaml``),
named ``<objective>-<prompt>[-<variant>]-seed<N>``; ``python evaluate.py predictions=... references=...``
recomputes its metrics (tests/test_results_table.py checks that it does). The tables open with
the command behind each row. Each table gives PCC and
SCC with their 95% intervals, RMSE, the spread of the predictions beside the references', and the
paired-bootstrap difference from the best run (the highest sentence total PCC) on the same
utterances; runs of one recipe with several seeds get a row of their seed-to-seed spread; the
published anchors, measured on the full 2,500-utterance test set, close each table. A last table
gives each run's mean predicted sentence total per band of the reference total, which shows where
a compressed spread comes from; another, how much of the word and phone scores' variance lies
within utterances, for predictions and references, and their correlation there: whether a word
or phone score locates the error or repeats its utterance's level.
"""

from __future__ import annotations

import argparse
import bisect
import collections
import itertools
import re
import shutil
import statistics
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import yaml

from apa.data.scales import ASPECTS
from apa.evaluation.comparison import Run, load_run
from apa.evaluation.metrics import correlation, paired_bootstrap, undefined_correlation
from apa.evaluation.pairing import Pairs, pair_scores
from apa.evaluation.report import HEADINGS, SHORT, number
from apa.runs import ANSWERS, DEV_HISTORY, METRICS, PREDICTIONS, REFERENCES, REPORT, RUN_CONFIG
from bench.common import ROOT, replace_section

RUNS_DIR = ROOT / "bench" / "real_data"
SECTION = "real-data"  # <!-- real-data:start --> ... <!-- real-data:end --> in BENCHMARKS.md
BEST_BY = "sentence/total/pcc"
RUN_NAME = re.compile(r"(?P<recipe>.+)-seed(?P<seed>\d+)$")
OVERRIDES = "overrides.yaml"  # Hydra's record of the command line, from the run's .hydra/
RESULTS = (PREDICTIONS, REFERENCES, METRICS, REPORT)
EVIDENCE = (RUN_CONFIG, *RESULTS, "train.log")  # a train.py run's; train.log: Hydra's job log (job_log)
LOCATED = (("word", "accuracy"), ("phone", "accuracy"))  # the localisation table's aspects
BANDS = (0, 5, 7, 8, 9, 10)  # edges of the reference sentence-total bands of the calibration table
# PCC on the full speechocean762 test set (2,500 utterances), as published.
ANCHORS = {
    "GOPT (Gong et al. 2022)": {"phone/accuracy": 0.612, "word/accuracy": 0.533, "sentence/total": 0.742},
    "Qwen2-Audio-7B, multi-granularity FT (Wang et al. 2025, Table 1)": {
        "phone/accuracy": 0.38,
        "word/accuracy": 0.51,
        "sentence/accuracy": 0.69,
        "sentence/fluency": 0.74,
        "sentence/prosodic": 0.73,
        "sentence/total": 0.72,
    },
}


def load_runs(folder: Path = RUNS_DIR) -> list[Run]:
    """The committed runs, best first (by sentence total PCC)."""
    runs = [load_run(path) for path in sorted(folder.iterdir()) if (path / METRICS).is_file()]
    for run in runs:
        run.name = run.folder.name
    return sorted(runs, key=lambda run: -(run.metrics["metrics"].get(BEST_BY) or float("-inf")))


def add_run(run_dir: Path, runs_dir: Path = RUNS_DIR, variant: str | None = None) -> Path:
    """Copy a finished run's evidence into ``runs_dir``; the adapter and checkpoints stay behind.

    A train.py run becomes ``<objective>-<prompt>-seed<N>`` (the choices Hydra recorded), or
    ``<objective>-<prompt>-<variant>-seed<N>`` when other overrides changed its recipe. An
    ``evaluate.py checkpoint=RUN`` run, the same model decoded another way, becomes that run's name
    followed by its decoding (``ce-multi-seed42-slots_soft``); its config.yaml is the training
    run's with the decoding it chose."""
    script = hydra_job(run_dir)
    config_file = ".hydra/config.yaml" if script == "evaluate" else RUN_CONFIG
    evidence = (*RESULTS, job_log(script))
    required = [*evidence, config_file, f".hydra/{OVERRIDES}"]
    missing = [name for name in required if not (run_dir / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{run_dir}: no {', '.join(missing)}; is this a finished train.py or evaluate.py run?")
    config = yaml.safe_load((run_dir / config_file).read_text())
    if script == "evaluate":
        trained, decoding = Path(config["checkpoint"]), config["decoding"]
        config = {**yaml.safe_load((trained / RUN_CONFIG).read_text()), "decoding": decoding}
        readout = f"_{decoding['readout']}" if decoding.get("readout") else ""
        target = runs_dir / f"{train_run_name(trained, variant)}-{hydra_choices(run_dir)['decoding']}{readout}"
    else:
        target = runs_dir / train_run_name(run_dir, variant)
    if target.exists():
        raise FileExistsError(f"{target} exists; remove it to replace that run")
    target.mkdir(parents=True)
    for name in (*evidence, ANSWERS, DEV_HISTORY):  # generated answers, dev curves: when the run has them
        if (run_dir / name).is_file():
            shutil.copy2(run_dir / name, target / name)
    (target / RUN_CONFIG).write_text(yaml.safe_dump(config, sort_keys=False))
    shutil.copy2(run_dir / ".hydra" / OVERRIDES, target / OVERRIDES)
    return target


def hydra_job(run_dir: Path) -> str:
    """Which script made the run (``train`` or ``evaluate``), as Hydra recorded; ``train`` if unknown."""
    hydra_file = run_dir / ".hydra" / "hydra.yaml"
    return yaml.safe_load(hydra_file.read_text())["hydra"]["job"]["name"] if hydra_file.is_file() else "train"


def job_log(script: str) -> str:
    """Hydra's log of the job, named after its script: how a copied run tells what made it."""
    return f"{script}.log"


def hydra_choices(run_dir: Path) -> dict[str, str]:
    return yaml.safe_load((run_dir / ".hydra" / "hydra.yaml").read_text())["hydra"]["runtime"]["choices"]


def train_run_name(run_dir: Path, variant: str | None = None) -> str:
    choices, seed = hydra_choices(run_dir), yaml.safe_load((run_dir / RUN_CONFIG).read_text())["seed"]
    recipe = [choices["objective"], choices["prompt"], *([variant] if variant else [])]
    return "-".join([*recipe, f"seed{seed}"])


def command(run: Run) -> str:
    """The command line that made the run, from its overrides.yaml (an evaluate.py run's
    checkpoint is the folder of the training run whose name it extends)."""
    overrides = run.folder / OVERRIDES
    if not overrides.is_file():
        return "-"
    arguments = yaml.safe_load(overrides.read_text()) or []
    if not (run.folder / job_log("evaluate")).is_file():
        return "python train.py " + " ".join(arguments)
    trained = run.folder.name.rsplit("-", 1)[0]
    arguments = [f"checkpoint=<{trained}'s run>" if a.startswith("checkpoint=") else a for a in arguments]
    return "python evaluate.py " + " ".join(arguments)


def with_interval(run: Run, name: str) -> str:
    value, interval = run.metrics["metrics"].get(name), run.metrics.get("ci95", {}).get(name)
    return number(value) + (f" [{number(interval[0], 2)}, {number(interval[1], 2)}]" if interval else "")


def spreads(run: Run, prefix: str) -> str:
    values = run.metrics["metrics"]
    return f"{number(values.get(f'{prefix}/sd'), 2)} / {number(values.get(f'{prefix}/sd_reference'), 2)}"


def difference(comparison: dict, name: str) -> str:
    entry = comparison.get(name)
    return "-" if entry is None else f"{entry['difference']:+.3f} (p={number(entry['p_value'], 3)})"


def seed_spread(runs: Iterable[Run], name: str) -> str:
    values = [run.metrics["metrics"].get(name) for run in runs]
    values = [v for v in values if v is not None]
    if len(values) < 2:
        return "-"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def recipes(runs: list[Run]) -> dict[str, list[Run]]:
    """Runs grouped by everything but their seed."""
    grouped: dict[str, list[Run]] = {}
    for run in runs:
        match = RUN_NAME.match(run.name)
        grouped.setdefault(match["recipe"] if match else run.name, []).append(run)
    return grouped


def granularity_table(granularity: str, runs: list[Run], comparisons: dict[str, dict]) -> list[str]:
    aspects = [a for a in ASPECTS[granularity] if any(f"{granularity}/{a}/pcc" in r.metrics["metrics"] for r in runs)]
    if not aspects:
        return []
    prefixes = [f"{granularity}/{a}" for a in aspects]
    header = "| run | | " + " | ".join(f"{HEADINGS[granularity]} {SHORT[a]}" for a in aspects) + " |"
    lines = [f"**{HEADINGS[granularity]} level**", "", header, "|---|---" + "|---" * len(aspects) + "|"]
    for index, run in enumerate(runs):
        rows = [
            ("PCC", [with_interval(run, f"{p}/pcc") for p in prefixes]),
            ("SCC", [with_interval(run, f"{p}/scc") for p in prefixes]),
            ("RMSE", [number(run.metrics["metrics"].get(f"{p}/rmse")) for p in prefixes]),
            ("sd predictions / references", [spreads(run, p) for p in prefixes]),
        ]
        if index:
            versus_best = [difference(comparisons[run.name], f"{p}/pcc") for p in prefixes]
            rows.append((f"PCC minus {runs[0].name}", versus_best))
        for row, (label, cells) in enumerate(rows):
            lines.append(f"| {run.name if row == 0 else ''} | {label} | " + " | ".join(cells) + " |")
    for recipe, seeds in recipes(runs).items():
        if len(seeds) > 1:
            cells = [seed_spread(seeds, f"{p}/pcc") for p in prefixes]
            lines.append(f"| {recipe}, {len(seeds)} seeds | PCC mean ± sd | " + " | ".join(cells) + " |")
    for anchor, values in ANCHORS.items():
        cells = [f"{values[p]:g}" if p in values else "-" for p in prefixes]
        if any(c != "-" for c in cells):
            lines.append(f"| {anchor}, full test set | PCC | " + " | ".join(cells) + " |")
    return [*lines, ""]


def band_index(value: float, bands: tuple[float, ...]) -> int:
    """Which band of ``bands`` (edges; the last band closed) ``value`` falls in."""
    return min(bisect.bisect_right(bands, value), len(bands) - 1) - 1


def calibration_table(runs: list[Run], bands: tuple[float, ...] = BANDS) -> list[str]:
    """Mean predicted sentence total per band of the reference total (the runs share references),
    under the references' own mean per band: where a compressed spread comes from."""
    references = {uid: r.total for uid, r in runs[0].references.items() if r.total is not None}
    band = {uid: band_index(total, bands) for uid, total in references.items()}
    counts = collections.Counter(band.values())
    labels = [f"{lower:g}-{upper:g} (n={counts[b]})" for b, (lower, upper) in enumerate(itertools.pairwise(bands))]

    def row(name: str, totals: dict[str, float | None]) -> str:
        grouped: dict[int, list[float]] = collections.defaultdict(list)
        for uid, total in totals.items():
            if uid in band and total is not None:
                grouped[band[uid]].append(total)
        means = [statistics.mean(grouped[b]) if grouped[b] else None for b in range(len(labels))]
        return f"| {name} | " + " | ".join(number(mean, 2) for mean in means) + " |"

    return [
        "**Sentence total by reference band**: the mean prediction in each band of the reference total "
        "(a calibrated scorer's follows the references' row)",
        "",
        "| run | " + " | ".join(labels) + " |",
        "|---" + "|---" * len(labels) + "|",
        row("references", references),
        *(row(run.name, {uid: p.total for uid, p in run.predictions.items()}) for run in runs),
        "",
    ]


def within_utterances(pair: Pairs) -> tuple[float | None, float | None, float | None]:
    """(PCC of predictions and references each less its utterance's mean, the share of the
    predictions' variance that lies within utterances, the references' share): whether a word or
    phone score locates the error or repeats the utterance's level. ``None`` where undefined."""
    predicted, reference, utterance = pair.arrays()
    if len(predicted) < 3:
        return None, None, None
    counts = np.bincount(utterance)
    counts[counts == 0] = 1
    centred = [values - (np.bincount(utterance, values) / counts)[utterance] for values in (predicted, reference)]
    shares = [c.var() / v.var() if v.var() > 0 else None for c, v in zip(centred, (predicted, reference), strict=True)]
    pcc = None if undefined_correlation(*centred) else correlation("pcc", *centred)
    return pcc, *shares


def localisation_table(runs: list[Run], aspects: tuple[tuple[str, str], ...] = LOCATED) -> list[str]:
    """Per run, for word and phone accuracy: the within-utterance PCC and the share of variance
    within utterances, predictions against references."""
    headings = [f"{HEADINGS[g]} {SHORT[a]}" for g, a in aspects]
    lines = [
        "**Word and phone scores within their utterance**: PCC after taking each utterance's mean out "
        "of predictions and references, and the share of the variance that lies within utterances "
        "(predictions / references)",
        "",
        "| run | " + " | ".join(f"{h} PCC within | {h} share within" for h in headings) + " |",
        "|---" + "|---|---" * len(aspects) + "|",
    ]
    for run in runs:
        pairs = pair_scores(run.predictions, run.references, set(aspects))
        if not any(pairs[key].predicted for key in aspects):
            continue
        cells = []
        for key in aspects:
            pcc, share, share_reference = within_utterances(pairs[key])
            cells += [number(pcc), f"{number(share, 2)} / {number(share_reference, 2)}"]
        lines.append(f"| {run.name} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def results_tables(runs: list[Run], resamples: int = 1000, seed: int = 0) -> str:
    best = runs[0]
    comparisons = {
        run.name: paired_bootstrap(run.predictions, best.predictions, best.references, resamples, seed)
        for run in runs[1:]
    }
    lines = [
        f"{len(runs)} runs on the subset's 300 test utterances (15 speakers); best first, by {BEST_BY}. "
        f"Intervals: 95% bootstrap over utterances ({resamples} resamples); differences: paired bootstrap "
        "on the same resamples, p two-sided.",
        "",
        "| run | command |",
        "|---|---|",
        *(f"| {run.name} | `{command(run)}` |" for run in runs),
        "",
    ]
    for granularity in ("phone", "word", "sentence"):
        lines += granularity_table(granularity, runs, comparisons)
    lines += calibration_table(runs)
    lines += localisation_table(runs)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.results_table", description=__doc__.splitlines()[0])
    parser.add_argument("--print", action="store_true", help="print the tables, leave BENCHMARKS.md alone")
    parser.add_argument("--runs", type=Path, default=RUNS_DIR)
    parser.add_argument("--add", type=Path, metavar="RUN_DIR", help="first copy this finished run into --runs")
    parser.add_argument("--variant", help="with --add: name what the run's other overrides changed (epochs5)")
    args = parser.parse_args(argv)
    if args.variant and not args.add:
        parser.error("--variant names a run being added: pass --add RUN_DIR")
    if args.add:
        print(f"added {add_run(args.add, args.runs, args.variant)}")
    tables = results_tables(load_runs(args.runs))
    print(tables)
    if not args.print:
        replace_section(ROOT / "BENCHMARKS.md", SECTION, tables)


if __name__ == "__main__":
    main()
