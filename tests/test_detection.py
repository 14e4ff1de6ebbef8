"""Mispronunciation detection at phone level: AUC, and precision, recall and F1 at a threshold that
the development split chooses, carried by the run folder to every later evaluation."""

import json
import math

import numpy as np
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from apa import training
from apa.data.records import Scores, WordScores
from apa.evaluation import Detection, evaluate
from apa.evaluation.detection import best_threshold, detection_metrics
from apa.evaluation.report import markdown_table
from apa.jobs import evaluate_job, train_job
from apa.training.selection import check_optimized_metric

from .test_dev_split import DEV_SELECTION
from .test_training import overrides


def test_auc_is_the_share_of_pairs_the_predictions_order_right():
    """Mispronounced phones predicted 0.5 and 1.0, correct ones 1.0 and 2.0: of the four pairs, three
    are ordered right and one is a tie (half): AUC 3.5 / 4."""
    values, reasons = detection_metrics(np.array([0.5, 1.0, 1.0, 2.0]), np.array([0, 1, 2, 2]), Detection())
    assert values["detection_auc"] == pytest.approx(0.875)
    assert values["detection_share"] == pytest.approx(0.5) and values["detection_below"] == 2.0
    assert values["detection_f1"] is None and "no decision threshold" in reasons["detection_f1"]


def test_precision_recall_and_f1_at_a_threshold():
    """Flagged below 1.2: the phones predicted 0.5, 1.0, 1.0; two of them are mispronounced, of three
    mispronounced in all: precision 2/3, recall 2/3, F1 2/3."""
    predicted, reference = np.array([0.5, 1.0, 1.0, 1.8, 2.0]), np.array([0, 1, 2, 1, 2])
    values, _ = detection_metrics(predicted, reference, Detection(threshold=1.2))
    assert values["detection_threshold"] == 1.2
    assert [values[f"detection_{m}"] for m in ("precision", "recall", "f1")] == pytest.approx([2 / 3] * 3)
    values, reasons = detection_metrics(predicted, reference, Detection(threshold=0.1))
    assert values["detection_precision"] is None and reasons["detection_precision"] == "no phone flagged"
    assert values["detection_recall"] == 0.0


def test_without_a_mispronounced_phone_nothing_is_guessed():
    values, reasons = detection_metrics(np.array([1.0, 2.0]), np.array([2.0, 2.0]), Detection(threshold=1.5))
    assert values["detection_auc"] is None and reasons["detection_auc"] == "no mispronounced phones"
    assert values["detection_recall"] is None and best_threshold(np.array([1.0]), np.array([2.0]), 2.0) is None


def test_the_chosen_threshold_is_the_f1_best():
    """Thresholds halfway between predictions: below 0.3 flags one phone (F1 2/3), below 1.7 three
    with both mispronounced ones (F1 4/5), the best."""
    predicted, reference = np.array([0.2, 0.4, 1.5, 1.9, 2.0]), np.array([0, 2, 0, 2, 2])
    assert best_threshold(predicted, reference, 2.0) == pytest.approx(1.7)


@given(
    st.lists(
        st.tuples(st.sampled_from([0.0, 0.5, 1.0, 1.5, 2.0]), st.sampled_from([0.0, 1.0, 2.0])), min_size=1, max_size=30
    )
)
def test_no_threshold_has_a_better_f1_than_the_chosen_one(pairs):
    predicted, reference = (np.array(values) for values in zip(*pairs, strict=True))
    chosen = best_threshold(predicted, reference, 2.0)
    if chosen is None:
        assert not (reference < 2).any()
        return

    def f1(threshold):
        return detection_metrics(predicted, reference, Detection(threshold=threshold))[0]["detection_f1"]

    assert all(f1(chosen) >= f1(t) - 1e-12 for t in np.linspace(-0.5, 2.5, 61))


@pytest.mark.parametrize("bad", [{"below": "2"}, {"threshold": True}, {"threshold": [1]}])
def test_a_bad_detection_config_is_refused(bad):
    with pytest.raises(ValueError, match="expected a number on the phone scale"):
        Detection(**bad)


def utterance(phone_scores: list[float], predicted: list[float]) -> tuple[Scores, Scores]:
    phones = tuple("AH" for _ in phone_scores)

    def scores(values):
        return Scores(8, 8, 8, 8, 8, words=(WordScores("a", 8, 10, 8, phones=phones, phones_accuracy=tuple(values)),))

    return scores(predicted), scores(phone_scores)


def test_the_evaluator_scores_detection_on_phone_accuracy_only():
    pairs = {f"u{i}": utterance([0, 2, 2, 1], [0.3 + i / 10, 1.9, 1.6, 1.2]) for i in range(4)}
    predictions, references = ({uid: pair[k] for uid, pair in pairs.items()} for k in (0, 1))
    report = evaluate(predictions, references, resamples=20, detection=Detection(threshold=1.5))
    metrics = report.metrics
    assert metrics["phone/accuracy/detection_auc"] == pytest.approx(1.0)
    assert metrics["phone/accuracy/detection_share"] == pytest.approx(0.5)
    assert metrics["phone/accuracy/detection_recall"] == pytest.approx(1.0)
    assert metrics["phone/accuracy/detection_precision"] == pytest.approx(1.0)
    assert not any("detection" in name for name in metrics if not name.startswith("phone/"))
    assert report.ci95["phone/accuracy/detection_f1"] == pytest.approx([1.0, 1.0])
    assert "phone/accuracy/detection_threshold" not in report.ci95  # given, not resampled
    assert "Mispronunciation detection: 50.0% of the phones" in markdown_table(report)
    assert "F1 1.000 [1.00, 1.00]" in markdown_table(report)
    unthresholded = evaluate(predictions, references, resamples=0)
    assert "no decision threshold" in unthresholded.undefined["phone/accuracy/detection_f1"]
    assert "(no decision threshold, so no precision, recall or F1)" in markdown_table(unthresholded)
    chosen = Detection().chosen_on(predictions, references)
    assert chosen.threshold is not None and 1.2 < chosen.threshold <= 1.6


def test_a_sweeper_may_target_detection_on_phones_only(compose):
    prompt = train_job(compose("train", ["model=tiny", "prompt=multi", "logger=none"])).prompt
    check_optimized_metric("dev/phone/accuracy/detection_auc", prompt)
    with pytest.raises(ValueError, match="detection_\\*: phone/accuracy only"):
        check_optimized_metric("dev/sentence/total/detection_auc", prompt)


def test_training_chooses_the_threshold_on_dev_and_its_run_carries_it(compose):
    """Each dev evaluation logs the threshold its predictions choose; the kept checkpoint's flags the
    test split's phones, and the run's config.yaml hands it to evaluate.py checkpoint=."""
    job = train_job(compose("train", overrides("regression", 2, "prompt=multi", *DEV_SELECTION, "test_split=test")))
    training.run(job)
    state = json.loads((job.output_dir / "checkpoints" / "checkpoint-2" / "trainer_state.json").read_text())
    evaluations = [e for e in state["log_history"] if "eval_dev/selection" in e]
    kept = next(e for e in evaluations if e["step"] == state["best_global_step"])
    threshold = kept["eval_dev/phone/accuracy/detection_threshold"]
    assert math.isfinite(threshold) and 0 <= kept["eval_dev/phone/accuracy/detection_auc"] <= 1
    history = json.loads((job.output_dir / "dev_history.json").read_text())  # what the notebooks' dev curves read
    assert history["kept_step"] == state["best_global_step"] and [e["step"] for e in history["evaluations"]] == [1, 2]
    assert history["selected_by"] == "dev/sentence/total/rmse"
    assert history["evaluations"][kept["step"] - 1]["dev/phone/accuracy/detection_threshold"] == threshold
    run_config = yaml.safe_load((job.output_dir / "config.yaml").read_text())
    assert run_config["detection"] == {"_target_": "apa.evaluation.Detection", "below": 2.0, "threshold": threshold}
    metrics = json.loads((job.output_dir / "metrics.json").read_text())["metrics"]
    assert metrics["phone/accuracy/detection_threshold"] == threshold
    assert metrics["phone/accuracy/detection_f1"] is not None

    def evaluation(*extra):
        return evaluate_job(compose("evaluate", [f"checkpoint={job.output_dir}", "logger=none", *extra])).detection

    assert evaluation() == Detection(2.0, threshold)
    assert evaluation("detection.threshold=1.5") == Detection(2.0, 1.5)  # the command line's wins
    assert evaluation("detection.below=1") == Detection(1.0, None)  # chosen for another definition: not reused
