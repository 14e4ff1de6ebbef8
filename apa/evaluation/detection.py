"""Mispronunciation detection at phone level: which sounds were wrong, the question a teacher asks.

A phone is *mispronounced* when its reference accuracy is below ``below`` (2 on speechocean762's
0-2 phone scale: the experts marked it down). A scorer *flags* a phone when its predicted accuracy
is below a decision ``threshold``. Reported, in metrics.json beside the correlations:

- ``detection_auc``: threshold-free, the probability that a mispronounced phone is predicted lower
  than a correctly pronounced one (ties count half): the Mann-Whitney U over the two groups'
  sizes, the area under the ROC curve of "flag when predicted below t" over every t;
- ``detection_precision``, ``detection_recall``, ``detection_f1`` of the flags at ``threshold``;
- ``detection_threshold``: the threshold used; ``detection_below``: what counts as mispronounced;
  ``detection_share``: the share of phones that are.

The threshold is chosen on development data (:func:`best_threshold`, the F1-best; a training run
chooses it on its dev split at the checkpoint it keeps) or given, never chosen on the split it
scores: that would report an F1 no one could reach on new speech.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from apa.data.records import Scores
from apa.evaluation.pairing import pair_scores

DETECTION_METRICS = (
    "detection_auc",
    "detection_precision",
    "detection_recall",
    "detection_f1",
    "detection_threshold",
    "detection_below",
    "detection_share",
)
AT_THRESHOLD = ("detection_precision", "detection_recall", "detection_f1")
DETECTION_ASPECT = ("phone", "accuracy")  # the scores detection reads


@dataclass(frozen=True)
class Detection:
    """What counts as mispronounced (reference below ``below``) and where the scorer flags
    (prediction below ``threshold``; None: no threshold known, so AUC only)."""

    below: float = 2.0
    threshold: float | None = None

    def __post_init__(self) -> None:
        for name in ("below", "threshold"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
                raise ValueError(f"detection.{name}={value!r}: expected a number on the phone scale (0-2)")

    def with_threshold(self, threshold: float | None) -> Detection:
        return Detection(self.below, threshold)

    def config(self) -> dict[str, Any]:
        """Its config node, as a run's config.yaml records it (with the threshold its dev split chose)."""
        return {"_target_": "apa.evaluation.Detection", "below": self.below, "threshold": self.threshold}

    def chosen_on(self, predictions: Mapping[str, Scores], references: Mapping[str, Scores]) -> Detection:
        """This detection with its threshold, if none is given, chosen on these (development)
        predictions: the F1-best (:func:`best_threshold`)."""
        if self.threshold is not None:
            return self
        pair = pair_scores(predictions, references, {DETECTION_ASPECT}).get(DETECTION_ASPECT)
        if pair is None or not len(pair.predicted):
            return self
        predicted, reference, _ = pair.arrays()
        return self.with_threshold(best_threshold(predicted, reference, self.below))


DEFAULT_DETECTION = Detection()  # mispronounced below 2, no threshold: AUC only


def mispronounced(reference: np.ndarray, below: float) -> np.ndarray:
    return np.asarray(reference) < below


def detection_metrics(predicted: np.ndarray, reference: np.ndarray, detection: Detection) -> tuple[dict, dict]:
    """The detection metrics of one set of phone pairs, and why any of them is undefined."""
    wrong = mispronounced(reference, detection.below)
    found = {
        "detection_share": ratio(wrong.sum(), len(wrong), "no phones"),
        "detection_threshold": (detection.threshold, None if detection.threshold is not None else NO_THRESHOLD),
        "detection_below": (detection.below, None),
        "detection_auc": auc(predicted[wrong], predicted[~wrong]),
        **at_threshold(predicted, wrong, detection.threshold),
    }
    return {name: value for name, (value, _) in found.items()}, {name: why for name, (_, why) in found.items() if why}


NO_THRESHOLD = "no decision threshold: give detection.threshold, or score a training run (its dev split chooses one)"


def ratio(numerator: float, denominator: float, why: str) -> tuple[float | None, str | None]:
    return (float(numerator / denominator), None) if denominator else (None, why)


def auc(wrong: np.ndarray, right: np.ndarray) -> tuple[float | None, str | None]:
    """P(a mispronounced phone's prediction < a correct one's), ties half: U / (n_wrong n_right)."""
    if not len(wrong) or not len(right):
        return None, f"no {'mispronounced' if not len(wrong) else 'correctly pronounced'} phones"
    statistic = stats.mannwhitneyu(right, wrong, alternative="two-sided").statistic  # pairs right > wrong
    return float(statistic / (len(wrong) * len(right))), None


def at_threshold(predicted: np.ndarray, wrong: np.ndarray, threshold: float | None) -> dict:
    """Precision, recall and F1 of flagging the phones predicted below ``threshold``, each with the
    reason it is undefined (no threshold, nothing flagged, nothing mispronounced)."""
    if threshold is None:
        return dict.fromkeys(AT_THRESHOLD, (None, NO_THRESHOLD))
    flagged = predicted < threshold
    hits = (flagged & wrong).sum()
    return {
        "detection_precision": ratio(hits, flagged.sum(), "no phone flagged"),
        "detection_recall": ratio(hits, wrong.sum(), "no mispronounced phone"),
        "detection_f1": ratio(2 * hits, flagged.sum() + wrong.sum(), "no phone flagged or mispronounced"),
    }


def best_threshold(predicted: np.ndarray, reference: np.ndarray, below: float) -> float | None:
    """The threshold with the best F1 on these (development) pairs: halfway between two adjacent
    distinct predictions, or above them all; None without a mispronounced phone."""
    wrong = mispronounced(reference, below)
    if not wrong.any():
        return None
    values = np.unique(predicted)
    candidates = np.append((values[:-1] + values[1:]) / 2, values[-1] + 1.0)
    order = np.argsort(predicted)
    flagged_wrong = np.cumsum(wrong[order])  # flagging the k lowest predictions finds these
    counts = np.searchsorted(predicted[order], candidates, side="left")  # how many are below each candidate
    hits = np.where(counts > 0, flagged_wrong[np.maximum(counts - 1, 0)], 0)
    f1 = 2 * hits / (counts + wrong.sum())
    return float(candidates[int(np.argmax(f1))])
