"""Which checkpoint to keep: one development metric that can cover every granularity a prompt asks for.

The Trainer keeps the checkpoint best on one number (``metric_for_best_model``). Choosing on the
sentence total alone keeps a checkpoint whose word and phone scores may be at their worst, so
``dev_selection`` names correlations on the development split whose mean is logged as
``dev/selection`` (select with ``metric_for_best_model: dev/selection``). For the ``multi`` prompt:
``[sentence/total/pcc, word/accuracy/pcc, phone/accuracy/pcc]``, each granularity weighted alike.
Correlations only: they share one scale (RMSEs do not: phones are scored 0-2, words 0-10). A
component that is undefined (constant predictions) leaves the mean undefined, so such a checkpoint
is never "best".

What train.py returns to a Hydra sweeper (``optimized_metric``) is a development metric too, read
at the checkpoint the run keeps: a sweep that chose on the test split would tune on it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from apa.evaluation.detection import DETECTION_ASPECT
from apa.evaluation.metrics import CORRELATIONS, SPREADS
from apa.prompts import Prompt

SELECTION = "selection"
# What each dev evaluation logs of its report: phone accuracy adds the detection threshold its
# predictions choose (the test split is scored at the kept checkpoint's) with the F1 there, and the AUC.
DEV_METRICS = ("pcc", "scc", "rmse", *SPREADS, "detection_auc", "detection_f1", "detection_threshold", SELECTION)


def check_selection(names: Sequence[str], prompt: Prompt) -> None:
    """Refuse (before any model loads) a selection naming something the prompt does not score or no correlation."""
    if not names:
        raise ValueError("dev_selection is empty: name at least one dev metric, e.g. [sentence/total/pcc]")
    for name in names:
        parts = name.split("/")
        if len(parts) != 3 or parts[2] not in CORRELATIONS:
            raise ValueError(f"dev_selection: {name!r} is not <granularity>/<aspect>/<{'|'.join(CORRELATIONS)}>")
        if (parts[0], parts[1]) not in prompt.asked:
            raise ValueError(
                f"dev_selection: {name!r}, but prompt {prompt.name} scores only {', '.join(prompt.aspect_names)}"
            )


def selection_score(metrics: Mapping[str, float | None], names: Sequence[str]) -> float | None:
    """The mean of ``names`` in ``metrics``; ``None`` when any of them is undefined."""
    values = [metrics.get(name) for name in names]
    return None if any(v is None for v in values) else sum(values) / len(values)


def check_optimized_metric(name: str, prompt: Prompt) -> None:
    """A sweeper's target must be a development metric the prompt's evaluations log (before any model loads)."""
    if not name.startswith("dev/"):
        raise ValueError(
            f"optimized_metric={name!r}: a sweeper must choose on the development split, never on test; "
            "name a dev metric, e.g. dev/selection or dev/sentence/total/pcc"
        )
    parts = name.removeprefix("dev/").split("/")
    if parts == [SELECTION]:
        return
    detection_elsewhere = parts[-1].startswith("detection_") and tuple(parts[:2]) != DETECTION_ASPECT
    if (
        len(parts) != 3
        or (parts[0], parts[1]) not in prompt.asked
        or parts[2] not in DEV_METRICS
        or detection_elsewhere
    ):
        raise ValueError(
            f"optimized_metric={name!r} is not logged on the dev split: dev/selection, or "
            f"dev/<{'|'.join(prompt.aspect_names)}>/<{'|'.join(DEV_METRICS[:-1])}> (detection_*: phone/accuracy only)"
        )


def dev_history(log_history: Sequence[Mapping], kept_step: int | None, selected_by: str | None) -> dict:
    """What the run folder's ``dev_history.json`` holds: each dev evaluation's metrics (``dev/...``,
    NaN where undefined written as null) by step, the step kept and the metric that chose it."""
    evaluations = [
        {"step": entry["step"], "epoch": entry.get("epoch")}
        | {
            key.removeprefix("eval_"): None if math.isnan(value) else value
            for key, value in entry.items()
            if key.startswith("eval_dev/")
        }
        for entry in log_history
        if any(key.startswith("eval_dev/") for key in entry)
    ]
    return {"kept_step": kept_step, "selected_by": selected_by, "evaluations": evaluations}


def value_at_kept_checkpoint(log_history: Sequence[Mapping], name: str, kept_step: int | None) -> float | None:
    """``name``'s dev value at the evaluation of the checkpoint the run kept (the last evaluation's
    when it kept none); None when the run never evaluated on the dev split."""
    key = f"eval_{name}"
    evaluations = [entry for entry in log_history if key in entry]
    if not evaluations:
        return None
    return next((e[key] for e in evaluations if e.get("step") == kept_step), evaluations[-1][key])
