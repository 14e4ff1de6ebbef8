"""Metrics for pronunciation scores: pure functions over paired predictions and references.

Per granularity and aspect: PCC, SCC (Spearman), RMSE and n, on the corpus's native scale (phones
0-2), with the standard deviations of the predictions and of the references (sd, sd_reference): a
system that answers nearly the same for everything can still correlate, and only its spread shows
it; and a correlation means more on references that spread widely. Sentence aspects add Parikh et
al.'s tolerance rates: exact (|error| < 0.5), within1
(<= 1), within2 (<= 2), the PCC of the within-1 / within-2 match indicators with the reference
(within1_pcc, within2_pcc) and the mean prediction where the reference is below 7 and from 7 up
(mean_ref_below7, mean_ref_from7). A value that is undefined (fewer than 3 pairs, constant
predictions or references) is ``None`` with its reason, never NaN. Phone accuracy adds
mispronunciation detection (:mod:`apa.evaluation.detection`: AUC, and precision, recall and F1 at
a decision threshold). 95% confidence intervals resample utterances (bootstrap); two systems are
compared on the same resamples (paired bootstrap).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from apa.data.records import Scores
from apa.data.scales import ASPECTS
from apa.evaluation.detection import (
    DEFAULT_DETECTION,
    DETECTION_ASPECT,
    DETECTION_METRICS,
    Detection,
    detection_metrics,
)
from apa.evaluation.pairing import Pairs, pair_scores, predicted_aspects

CORRELATIONS = ("pcc", "scc")
SPREADS = ("sd", "sd_reference")  # standard deviations of the predictions and of the references
TOLERANCES = {"exact": (0.5, False), "within1": (1.0, True), "within2": (2.0, True)}  # bound, inclusive


# Parikh et al.'s further sentence analyses: the PCC of the within-1 / within-2 match indicators
# (their Table 2) and the mean prediction below and from a reference of 7 (their section 3.3).
MATCH_CORRELATIONS = {"within1_pcc": 1.0, "within2_pcc": 2.0}
BAND_EDGE = 7.0
BAND_MEANS = ("mean_ref_below7", "mean_ref_from7")


def metric_names(granularity: str, detection: Detection | None = None) -> tuple[str, ...]:
    sentence = (*TOLERANCES, *MATCH_CORRELATIONS, *BAND_MEANS) if granularity == "sentence" else ()
    return (*CORRELATIONS, "rmse", "n", *SPREADS, *sentence, *(DETECTION_METRICS if detection else ()))


FIXED = ("n", "detection_threshold", "detection_below")  # not resampled: the bootstrap has nothing to vary in them


def compute(
    predicted: np.ndarray, reference: np.ndarray, granularity: str, detection: Detection | None = None
) -> tuple[dict, dict]:
    """Every metric of one aspect (with ``detection``: the mispronunciation detection metrics too),
    and why any of them is undefined."""
    values: dict[str, float | None] = {"n": len(predicted)}
    reasons: dict[str, str] = {}
    if len(predicted) == 0:
        for name in metric_names(granularity, detection):
            if name != "n":
                values[name], reasons[name] = None, "no predictions"
        return values, reasons
    if detection is not None:
        found, why_not = detection_metrics(predicted, reference, detection)
        values |= found
        reasons |= why_not
    error = predicted - reference
    values["rmse"] = float(np.sqrt(np.mean(error**2)))
    values["sd"], values["sd_reference"] = float(np.std(predicted)), float(np.std(reference))
    for name, (bound, inclusive) in TOLERANCES.items():
        if granularity == "sentence":
            values[name] = float(np.mean(np.abs(error) <= bound if inclusive else np.abs(error) < bound))
    if granularity == "sentence":
        for analysis in (match_correlations, mean_by_reference_band):
            found, why_not = analysis(predicted, reference)
            values |= found
            reasons |= why_not
    why = undefined_correlation(predicted, reference)
    for name in CORRELATIONS:
        values[name], reasons[name] = (None, why) if why else (correlation(name, predicted, reference), None)
    return values, {k: v for k, v in reasons.items() if v}


def match_correlations(predicted: np.ndarray, reference: np.ndarray) -> tuple[dict, dict]:
    """Parikh et al. (section 3.1, Table 2): the PCC of the match indicator (1 where the prediction
    is within 1, or 2, of the reference, else 0) with the reference score. The paper does not say
    what the indicator is correlated with; the reference is our reading. A model that answers high
    whatever it hears matches the high references only, which this correlation shows as positive."""
    values, reasons = {}, {}
    for name, bound in MATCH_CORRELATIONS.items():
        match = (np.abs(predicted - reference) <= bound).astype(float)
        why = undefined_correlation(reference, reference)  # too few pairs or constant references
        if why is None and np.ptp(match) == 0:
            why = f"{'every' if match[0] else 'no'} prediction within {bound:g}"
        values[name], reasons[name] = (None, why) if why else (correlation("pcc", match, reference), None)
    return values, {k: v for k, v in reasons.items() if v}


def mean_by_reference_band(predicted: np.ndarray, reference: np.ndarray) -> tuple[dict, dict]:
    """Parikh et al. (section 3.3): the mean prediction where the reference is below 7 and where it
    is 7 or more; a model that hears quality predicts clearly less in the first band."""
    values, reasons = {}, {}
    for name, band in zip(BAND_MEANS, (reference < BAND_EDGE, reference >= BAND_EDGE), strict=True):
        values[name] = float(np.mean(predicted[band])) if band.any() else None
        if not band.any():
            reasons[name] = f"no reference {'below' if name == BAND_MEANS[0] else 'from'} {BAND_EDGE:g}"
    return values, reasons


def undefined_correlation(predicted: np.ndarray, reference: np.ndarray) -> str | None:
    if len(predicted) < 3:
        return f"fewer than 3 pairs ({len(predicted)})"
    if np.ptp(reference) == 0:
        return f"constant references (all {reference[0]:g})"
    if np.ptp(predicted) == 0:
        return f"constant predictions (all {predicted[0]:g})"
    return None


def correlation(name: str, predicted: np.ndarray, reference: np.ndarray) -> float:
    statistic = stats.pearsonr if name == "pcc" else stats.spearmanr
    return float(statistic(predicted, reference).statistic)


@dataclass
class Report:
    """Scores of one system: ``metrics["sentence/accuracy/pcc"]`` and so on."""

    metrics: dict[str, float | None] = field(default_factory=dict)
    undefined: dict[str, str] = field(default_factory=dict)  # metric -> why it is None
    coverage: dict[str, dict] = field(default_factory=dict)  # granularity/aspect -> counts
    missing: dict[str, list[str]] = field(default_factory=dict)  # granularity/aspect -> missing items
    ci95: dict[str, list[float] | None] = field(default_factory=dict)
    ignored: dict[str, list[str]] = field(default_factory=dict)  # what was left out of scoring, and why
    answers: dict = field(default_factory=dict)  # how alike the sentence answers are (sentence_answers)

    def to_json(self) -> dict:
        return {
            "metrics": self.metrics,
            "ci95": self.ci95,
            "coverage": self.coverage,
            "undefined": self.undefined,
            "missing": self.missing,
            "ignored": self.ignored,
            "answers": self.answers,
        }


def sentence_answers(predictions: Mapping[str, Scores], aspects: Sequence[str]) -> dict:
    """How alike the sentence answers are, with their scores (in ``aspects`` order) to one decimal
    and rounded to whole points: the most common answer, the share of utterances that gave it, and
    how many distinct answers there are. A scorer that answers the same for everyone shows here,
    whatever its correlations say; rounded, a soft readout's small variations around one answer count
    as that answer."""
    answered = [
        values for scores in predictions.values() if None not in (values := [scores.aspect(a) for a in aspects])
    ]
    if not answered:
        return {}
    found = {"aspects": list(aspects), "n": len(answered)}
    for name, digits in (("exact", 1), ("rounded", 0)):
        answers = Counter(tuple(round(value, digits) for value in values) for values in answered)
        answer, count = answers.most_common(1)[0]
        found[name] = {"most_common": list(answer), "share": count / len(answered), "distinct": len(answers)}
    return found


WITHOUT_REFERENCE = "predictions without a reference"


def evaluate(
    predictions: Mapping[str, Scores],
    references: Mapping[str, Scores],
    resamples: int = 1000,
    seed: int = 0,
    aspects: set[tuple[str, str]] | None = None,
    detection: Detection | None = DEFAULT_DETECTION,
) -> Report:
    """Pair, score, and bootstrap every aspect the predictions contain, or the given ``aspects``
    (what a prompt asked for, so that unparsed answers show as zero coverage); phone accuracy with
    ``detection`` too. Predictions with nothing in them score every aspect of the references, at
    zero coverage; predictions of utterances without a reference are listed in ``ignored``."""
    report = Report()
    unreferenced = sorted(predictions.keys() - references.keys())
    if unreferenced:
        report.ignored[WITHOUT_REFERENCE] = unreferenced
    if aspects is None and not predicted_aspects(predictions):
        aspects = predicted_aspects(references)
    pairs = pair_scores(predictions, references, aspects)
    report.answers = sentence_answers(predictions, [a for a in ASPECTS["sentence"] if ("sentence", a) in pairs])
    for (granularity, aspect), pair in pairs.items():
        key = f"{granularity}/{aspect}"
        predicted, reference, _ = pair.arrays()
        detects = detection if (granularity, aspect) == DETECTION_ASPECT else None
        values, reasons = compute(predicted, reference, granularity, detects)
        report.metrics |= {f"{key}/{name}": value for name, value in values.items()}
        report.undefined |= {f"{key}/{name}": why for name, why in reasons.items()}
        total = len(pair.predicted) + len(pair.missing)
        report.coverage[key] = {
            "predicted": len(pair.predicted),
            "references": total,
            "rate": len(pair.predicted) / total if total else None,
        }
        if pair.missing:
            report.missing[key] = pair.missing
        if resamples:
            intervals = bootstrap(pair, granularity, len(references), resamples, seed, detects)
            report.ci95 |= {f"{key}/{name}": interval for name, interval in intervals.items()}
    return report


def low_score_agreement(pair: Pairs, threshold: float = 6) -> dict[str, float | int | None]:
    """Parikh et al. (section 3.2): of the items whose reference is at most ``threshold``, the
    share predicted at most ``threshold`` too (models that always answer high score 0)."""
    predicted, reference, _ = pair.arrays()
    low = reference <= threshold
    return {
        "low_references": int(low.sum()),
        "also_low": float(np.mean(predicted[low] <= threshold)) if low.any() else None,
    }


def resampled_counts(n_utterances: int, resamples: int, seed: int) -> np.ndarray:
    """How often each utterance is drawn in each bootstrap resample: (resamples, n_utterances)."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_utterances, size=(resamples, n_utterances))
    return np.stack([np.bincount(row, minlength=n_utterances) for row in draws])


def bootstrap_values(
    pair: Pairs, granularity: str, counts: np.ndarray, detection: Detection | None = None
) -> dict[str, np.ndarray]:
    """Each metric recomputed on every resample (NaN where undefined)."""
    predicted, reference, utterance = pair.arrays()
    names = [n for n in metric_names(granularity, detection) if n not in FIXED]
    out = {name: np.full(len(counts), np.nan) for name in names}
    for b, weights in enumerate(counts):
        take = np.repeat(np.arange(len(predicted)), weights[utterance]) if len(predicted) else np.array([], int)
        values, _ = compute(predicted[take], reference[take], granularity, detection)
        for name in names:
            if values[name] is not None:
                out[name][b] = values[name]
    return out


def bootstrap(
    pair: Pairs, granularity: str, n_utterances: int, resamples: int, seed: int, detection: Detection | None = None
) -> dict:
    """95% percentile intervals; None when the metric is undefined in most resamples, or when the
    pairs come from fewer than two utterances (resampling one utterance cannot vary anything: its
    interval would have zero width, not tell the uncertainty)."""
    if not resamplable(pair):
        return {name: None for name in metric_names(granularity, detection) if name not in FIXED}
    values = bootstrap_values(pair, granularity, resampled_counts(n_utterances, resamples, seed), detection)
    return {name: _interval(samples) for name, samples in values.items()}


def resamplable(pair: Pairs) -> bool:
    """Whether resampling utterances can vary the pairs: they must come from two utterances or more."""
    return len(set(pair.utterance)) >= 2


def _interval(samples: np.ndarray) -> list[float] | None:
    defined = samples[~np.isnan(samples)]
    if len(defined) < 0.5 * len(samples):
        return None
    low, high = np.percentile(defined, [2.5, 97.5])
    return [float(low), float(high)]


def paired_bootstrap(
    predictions_a: Mapping[str, Scores],
    predictions_b: Mapping[str, Scores],
    references: Mapping[str, Scores],
    resamples: int = 1000,
    seed: int = 0,
) -> dict[str, dict]:
    """A minus B for every metric both define, on the items both predict and the same resamples:
    the observed difference, its 95% interval and a two-sided p-value (the share of resamples on
    the other side of zero, doubled); neither over a single utterance."""
    pairs_a, pairs_b = pair_scores(predictions_a, references), pair_scores(predictions_b, references)
    counts = resampled_counts(len(references), resamples, seed)
    result = {}
    for key in sorted(pairs_a.keys() & pairs_b.keys()):
        granularity = key[0]
        a, b = _common(pairs_a[key], pairs_b[key])
        observed_a, _ = compute(*a.arrays()[:2], granularity)
        observed_b, _ = compute(*b.arrays()[:2], granularity)
        samples_a = bootstrap_values(a, granularity, counts)
        samples_b = bootstrap_values(b, granularity, counts)
        for name in samples_a:
            if observed_a[name] is None or observed_b[name] is None:
                continue
            differences = samples_a[name] - samples_b[name]
            differences = differences[~np.isnan(differences)] if resamplable(a) else np.array([])
            share_below = np.mean(differences <= 0) if len(differences) else math.nan
            share_above = np.mean(differences >= 0) if len(differences) else math.nan
            result[f"{key[0]}/{key[1]}/{name}"] = {
                "difference": observed_a[name] - observed_b[name],
                "ci95": _interval(differences) if len(differences) else None,
                "p_value": None if math.isnan(share_below) else float(min(1.0, 2 * min(share_below, share_above))),
                "n": observed_a["n"],
            }
    return result


def _common(a: Pairs, b: Pairs) -> tuple[Pairs, Pairs]:
    """Restrict two systems' pairs of one aspect to the reference items both predicted."""
    rows_b = {item: i for i, item in enumerate(b.item)}
    shared = [(i, rows_b[item]) for i, item in enumerate(a.item) if item in rows_b]
    return a.select([i for i, _ in shared]), b.select([j for _, j in shared])
