"""Run one evaluation: score a predictions file, or run a model over a split and score it.

The entry point (``evaluate.py``) turns the Hydra config into an :class:`EvaluateJob`; a training
run scores its test split after training with the same :func:`decode_and_score`. The model code
(torch, transformers, peft) is imported only where a model is decoded, so scoring a predictions
file loads none of it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from apa.atomic import check_folder
from apa.data.corpus import Corpus, check_limit
from apa.data.records import Scores, ScoresFile, Utterance, read_scores
from apa.evaluation.detection import DEFAULT_DETECTION, Detection
from apa.evaluation.metrics import Report, evaluate, paired_bootstrap
from apa.evaluation.pairing import pair_scores
from apa.evaluation.plots import figures, save
from apa.evaluation.report import markdown_table, pcc_before_after, predictions_json, write_json, write_report
from apa.prompts import Prompt
from apa.runs import ANSWERS, METRICS, PLOTS_DIR, PREDICTIONS, REFERENCES
from apa.tracking import WandbLogger

if TYPE_CHECKING:
    from torch import nn
    from transformers import ProcessorMixin

    from apa.data.features import FeatureTable
    from apa.evaluation.decoders import Decoder, Prediction
    from apa.models import ModelSource

log = logging.getLogger(__name__)


@dataclass
class EvaluateJob:
    """Either ``predictions`` (a file) or ``model`` (+ ``adapter``, ``prompt``) to decode ``data``."""

    output_dir: Path
    logger: WandbLogger
    cache_dir: Path
    data: Corpus | None = None
    split: str | list[str] = "test"  # several: their utterances together (Parikh et al. used all 5,000)
    limit: int | None = None
    references: Path | None = None  # a scores.json-schema file instead of data's labels
    predictions: Path | None = None
    model: ModelSource | None = None
    adapter: Path | None = None  # a training run's adapter folder
    prompt: Prompt | None = None
    decoder: Decoder | None = None  # how ``model`` is read (evaluate.py: decoding_config); needed with it
    compare: Path | None = None  # another system's predictions: paired bootstrap against it
    detection: Detection = (
        DEFAULT_DETECTION  # mispronounced phones: a checkpoint's dev-chosen threshold when none is given
    )
    resamples: int = 1000
    seed: int = 0
    config: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_limit(self.limit)
        check_folder(self.output_dir, "output_dir")
        check_folder(self.cache_dir, "paths.cache_dir ($APA_CACHE)")


def score(
    predictions: dict[str, Scores],
    references: dict[str, Scores],
    output_dir: Path,
    logger: WandbLogger | None,
    resamples: int = 1000,
    seed: int = 0,
    compare: dict[str, Scores] | None = None,
    aspects: set[tuple[str, str]] | None = None,
    ignored: Mapping[str, list[str]] | None = None,
    detection: Detection = DEFAULT_DETECTION,
) -> Report:
    """Metrics with confidence intervals, written to ``output_dir`` and sent to the tracker (if
    any); ``aspects``: what was asked for (default: what the predictions contain); ``ignored``: what
    reading the files left out; ``detection``: how mispronounced phones are told and flagged.
    Everything ignored is in metrics.json and the log."""
    report = evaluate(predictions, references, resamples, seed, aspects, detection)
    for category, items in (ignored or {}).items():
        report.ignored[category] = [*items, *report.ignored.get(category, [])]
    warn_ignored(report.ignored)
    extra = {"comparison": paired_bootstrap(predictions, compare, references, resamples, seed)} if compare else {}
    write_report(output_dir, report, extra)
    pairs = pair_scores(predictions, references, aspects)
    plots = save(figures(pairs), output_dir / PLOTS_DIR)
    if logger is None:
        return report
    logger.summarize(summary(report))
    logger.log_images({f"eval/{name}": path for name, path in plots.items()})
    for granularity in ("sentence", "word", "phone"):  # one table each, so no granularity crowds out another
        rows = [
            [item, aspect, p, r]
            for (g, aspect), pair in sorted(pairs.items())
            if g == granularity
            for item, p, r in zip(pair.item, pair.predicted, pair.reference, strict=True)
        ]
        if rows:
            logger.log_table(f"eval/predictions/{granularity}", ["item", "aspect", "predicted", "reference"], rows)
    logger.log_artifact("evaluation", "evaluation", [output_dir / name for name in (PREDICTIONS, REFERENCES, METRICS)])
    return report


def summary(report: Report) -> dict[str, float]:
    """The defined metrics as ``eval/<name>``, each with its 95% interval (``eval/<name>/ci95_low``, ``_high``)."""
    values = {f"eval/{k}": v for k, v in report.metrics.items() if v is not None}
    for name, interval in report.ci95.items():
        if interval is not None:
            values |= {f"eval/{name}/ci95_low": interval[0], f"eval/{name}/ci95_high": interval[1]}
    return values


def warn_ignored(ignored: Mapping[str, list[str]], shown: int = 10) -> None:
    for category, items in ignored.items():
        more = f" ... and {len(items) - shown} more" if len(items) > shown else ""
        log.warning("ignored %d %s:\n  %s%s", len(items), category, "\n  ".join(items[:shown]), more)


def announce(
    report: Report,
    output_dir: Path,
    logger: WandbLogger,
    untrained: Report | None = None,
    next_steps: Sequence[str] = (),
) -> None:
    """The last thing a run prints: the full table, then a summary to read at a glance (each
    aspect's PCC, beside the untrained model's when it was scored), where the results are and the
    commands to go on with."""
    lines = [markdown_table(report), pcc_before_after(report, untrained), "", f"Results: {output_dir}"]
    if logger.location:
        lines.append(f"W&B run: {logger.location}")
    lines += [f"Next: {command}" for command in next_steps]
    log.info("\n%s", "\n".join(lines))


def write_predictions(output_dir: Path, predictions: dict[str, Prediction], utterances: list[Utterance]) -> None:
    """predictions.json, the references they are scored against (references.json, so that runs can
    be compared from their folders alone) and the raw answers of free generation (answers.json)."""
    output_dir.mkdir(parents=True, exist_ok=True)
    texts = {u.id: u.text for u in utterances}
    write_json(output_dir / PREDICTIONS, predictions_json({u: p.scores for u, p in predictions.items()}, texts))
    write_json(output_dir / REFERENCES, predictions_json({u.id: u.scores for u in utterances}, texts))
    answers = {uid: p.answer for uid, p in predictions.items() if p.answer is not None}
    if answers:
        write_json(output_dir / ANSWERS, answers)


def _references(job: EvaluateJob) -> tuple[ScoresFile, list[Utterance]]:
    if job.references is not None:
        return read_scores(job.references), []
    if job.data is None:
        raise ValueError("nothing to compare with: give references=FILE or data=<corpus> (and split=...)")
    splits = [job.split] if isinstance(job.split, str) else list(job.split)
    utterances = [u for split in splits for u in job.data.utterances(split)][: job.limit]
    return ScoresFile({u.id: u.scores for u in utterances}, {u.id: u.text for u in utterances}, {}), utterances


def merged(*files: ScoresFile | None) -> dict[str, list[str]]:
    """What reading these files ignored, by category."""
    ignored: dict[str, list[str]] = {}
    for file in files:
        for category, items in (file.ignored if file else {}).items():
            ignored.setdefault(category, []).extend(items)
    return ignored


def decode_and_score(
    decoder: Decoder,
    model: nn.Module,
    processor: ProcessorMixin,
    prompt: Prompt,
    utterances: list[Utterance],
    features: FeatureTable,
    output_dir: Path,
    logger: WandbLogger,
    resamples: int = 1000,
    seed: int = 0,
    compare: dict[str, Scores] | None = None,
    ignored: Mapping[str, list[str]] | None = None,
    detection: Detection = DEFAULT_DETECTION,
) -> Report | None:
    """Decode ``utterances``, write what was decoded (:func:`write_predictions`) and :func:`score`
    it against their labels on what the prompt asks for: a training run's test split after
    training, and ``evaluate.py``'s model or checkpoint, the same way. Every process of a
    multi-process job decodes a share (:mod:`apa.evaluation.shares`); the others return None."""
    from apa.evaluation.shares import decode_shares, is_main_process  # torch: only where a model decodes

    decoded = decode_shares(decoder, model, processor, prompt, utterances, features)
    if not is_main_process():  # the main process writes and scores what every process decoded
        return None
    write_predictions(output_dir, decoded, utterances)
    predictions = {uid: p.scores for uid, p in decoded.items()}
    references = {u.id: u.scores for u in utterances}
    return score(
        predictions, references, output_dir, logger, resamples, seed, compare, prompt.asked, ignored, detection
    )


def run(job: EvaluateJob) -> dict[str, float | None]:
    with job.logger.session(job.config, job.output_dir) as tracker:
        references_file, utterances = _references(job)
        if job.predictions is not None:
            report = _score_predictions(job, references_file, tracker)
        elif job.model is not None and job.prompt is not None:
            report = _decode_model(job, references_file, utterances, tracker)
        else:
            raise ValueError(
                "nothing to evaluate: give predictions=FILE, checkpoint=RUN_DIR, or model=... prompt=... data=..."
            )
    if report is None:  # another process of a multi-process job: the main one reports
        return {}
    announce(report, job.output_dir, job.logger)
    return report.metrics


def _score_predictions(job: EvaluateJob, references_file: ScoresFile, tracker: WandbLogger) -> Report:
    """The predictions file scored against the references."""
    predictions_file = read_scores(job.predictions, complete=False)
    compare_file = _compare_file(job)
    return score(
        predictions_file.scores,
        references_file.scores,
        job.output_dir,
        tracker,
        job.resamples,
        job.seed,
        compare=compare_file.scores if compare_file else None,
        ignored=merged(references_file, predictions_file, compare_file),
        detection=job.detection,
    )


def _decode_model(
    job: EvaluateJob, references_file: ScoresFile, utterances: list[Utterance], tracker: WandbLogger
) -> Report | None:
    """The job's model, with its adapter, decodes the references' utterances (their audio) and is scored."""
    if not utterances:
        raise ValueError("decoding a model needs data=<corpus> (its audio), not only references=FILE")
    if job.decoder is None:
        raise ValueError("decoding a model needs a decoder (apa.evaluation.decoding_config says which)")
    compare_file = _compare_file(job)  # read before the model loads: a bad file fails at once
    from transformers import set_seed

    from apa.data.features import FeatureCache
    from apa.models.adapter import load_adapter

    set_seed(job.seed)  # only decoding a model draws random numbers
    model, processor = job.model.load()
    if job.adapter is not None:
        model = load_adapter(model, processor, job.adapter, job.prompt.vocabulary)
    features = FeatureCache.under(job.cache_dir).load(utterances, processor.feature_extractor)
    return decode_and_score(
        job.decoder,
        model,
        processor,
        job.prompt,
        utterances,
        features,
        job.output_dir,
        tracker,
        job.resamples,
        job.seed,
        compare=compare_file.scores if compare_file else None,
        ignored=merged(references_file, compare_file),
        detection=job.detection,
    )


def _compare_file(job: EvaluateJob) -> ScoresFile | None:
    return read_scores(job.compare, complete=False) if job.compare else None
