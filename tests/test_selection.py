"""Checkpoint selection on a development metric that can cover every granularity the prompt asks for."""

import importlib
import json
import math
from dataclasses import replace

import pytest

from apa import training
from apa.jobs import train_job
from apa.training.selection import check_optimized_metric, check_selection, selection_score

from .test_dev_split import DEV_SELECTION
from .test_training import overrides


def test_selection_is_the_mean_of_its_correlations():
    metrics = {"sentence/total/pcc": 0.8, "word/accuracy/pcc": 0.5, "phone/accuracy/pcc": 0.2}
    assert selection_score(metrics, list(metrics)) == pytest.approx(0.5)
    assert selection_score(metrics, ["word/accuracy/pcc"]) == pytest.approx(0.5)


def test_an_undefined_component_leaves_the_selection_undefined():
    metrics = {"sentence/total/pcc": 0.8, "word/accuracy/pcc": None}
    assert selection_score(metrics, ["sentence/total/pcc", "word/accuracy/pcc"]) is None
    assert selection_score(metrics, ["phone/accuracy/pcc"]) is None  # not computed at all


@pytest.mark.parametrize(
    ("names", "message"),
    [
        ([], "empty"),
        (["sentence/total/rmse"], "not <granularity>/<aspect>/<pcc|scc>"),  # RMSEs do not share a scale
        (["sentence/total"], "not <granularity>/<aspect>"),
        (["word/accuracy/pcc"], "scores only sentence/accuracy"),  # the sentence prompt has no words
    ],
)
def test_selection_refuses_what_the_prompt_cannot_give(compose, names, message):
    prompt = train_job(compose("train", ["model=tiny", "prompt=sentence", "logger=none"])).prompt
    with pytest.raises(ValueError, match=message):
        check_selection(names, prompt)


def test_a_bad_selection_fails_before_the_model_loads(compose, monkeypatch):
    job = train_job(compose("train", overrides("fa", 1, "prompt=sentence", "dev_selection=[phone/accuracy/pcc]")))
    monkeypatch.setattr(type(job.model), "load", lambda self: pytest.fail("the model loaded first"))
    with pytest.raises(ValueError, match="dev_selection"):
        training.run(job)


def test_training_keeps_the_checkpoint_best_on_the_mean_of_the_dev_correlations(compose, monkeypatch):
    """Three evaluations whose accuracy PCC alone would keep step 2, where the total is undefined."""
    run_module = importlib.import_module("apa.training.run")  # the module; apa.training.run is its function
    scored, given = run_module.evaluate, iter([(0.2, 0.4), (0.9, None), (0.1, 0.1)])

    def known(*arguments, **options):
        report = scored(*arguments, **options)
        accuracy, total = next(given)
        return replace(
            report, metrics=report.metrics | {"sentence/accuracy/pcc": accuracy, "sentence/total/pcc": total}
        )

    monkeypatch.setattr(run_module, "evaluate", known)
    settings = [
        "dev_selection=[sentence/accuracy/pcc,sentence/total/pcc]",
        "trainer.arguments.metric_for_best_model=dev/selection",
    ]
    job = train_job(
        compose("train", overrides("regression", 3, "prompt=sentence", *DEV_SELECTION, *settings, "test_split=test"))
    )
    returned = training.run(job)
    test_metrics = json.loads((job.output_dir / "metrics.json").read_text())["metrics"]
    assert returned == pytest.approx(0.3)  # what a sweeper receives: dev/selection at the kept checkpoint...
    assert returned != pytest.approx(test_metrics["sentence/total/pcc"])  # ... never the test split's
    state = json.loads((job.output_dir / "checkpoints" / "checkpoint-3" / "trainer_state.json").read_text())
    selections = [e["eval_dev/selection"] for e in state["log_history"] if "eval_dev/selection" in e]
    assert selections[0] == pytest.approx(0.3) and math.isnan(selections[1]) and selections[2] == pytest.approx(0.1)
    assert state["best_model_checkpoint"].endswith("checkpoint-1")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("sentence/total/pcc", "never on test"),  # the test split's metric, what sweeps once returned
        ("dev/word/accuracy/pcc", "is not logged on the dev split"),  # the sentence prompt has no words
        ("dev/sentence/total/mae", "is not logged on the dev split"),
    ],
)
def test_a_sweeper_target_must_be_a_dev_metric_the_prompt_logs(compose, name, message):
    prompt = train_job(compose("train", ["model=tiny", "prompt=sentence", "logger=none"])).prompt
    with pytest.raises(ValueError, match=message):
        check_optimized_metric(name, prompt)
    for fine in ("dev/selection", "dev/sentence/total/pcc", "dev/sentence/fluency/rmse"):
        check_optimized_metric(fine, prompt)
