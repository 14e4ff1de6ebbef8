"""train.py and evaluate.py run from the command line, as a user starts them."""

import json
import sys

import pytest
import yaml

from apa.data.records import Scores, WordScores

from .helpers import launch, only_run_dir

SMALL_RUN = [
    "model=tiny",
    "logger=none",
    "data=synthetic",
    "data.speakers=3",
    "data.utterances_per_speaker=2",
    "data.test_speakers=1",
    "trainer.arguments.max_steps=1",
    "trainer.arguments.per_device_train_batch_size=2",
    "trainer.arguments.gradient_accumulation_steps=1",
]


def test_train_then_evaluate_the_checkpoint(tmp_path):
    outputs = tmp_path / "outputs"
    result = launch(
        "train.py", *SMALL_RUN, "objective=fa", "prompt=sentence", "bootstrap_resamples=20", outputs=outputs
    )
    assert result.returncode == 0, result.stderr
    run_dir = only_run_dir(outputs, "train")
    config = yaml.safe_load((run_dir / "config.yaml").read_text())  # resolved
    assert config["model"]["_target_"] == "apa.models.offline.TinyQwen2Audio" and "${" not in str(config)
    slots = {"_target_": "apa.evaluation.SlotDecoder", "batch_size": 8, "readout": "soft", "masked_slots": True}
    assert config["decoding"] == slots  # how the run is read, written whole by training
    assert (run_dir / "adapter" / "adapter_model.safetensors").is_file()
    assert (run_dir / "adapter" / "tokenizer.json").is_file()  # with the added score tokens
    log = (run_dir / "train.log").read_text()
    assert "LoRA r=16 on 14 modules in language_model" in log and "adapter fingerprint" in log
    trained = json.loads((run_dir / "metrics.json").read_text())
    predictions = json.loads((run_dir / "predictions.json").read_text())
    assert len(predictions) == 2 and trained["coverage"]["sentence/total"]["rate"] == 1.0

    result = launch("evaluate.py", f"checkpoint={run_dir}", "logger=none", "bootstrap_resamples=20", outputs=outputs)
    assert result.returncode == 0, result.stderr
    evaluated = only_run_dir(outputs, "evaluate")
    assert json.loads((evaluated / "predictions.json").read_text()) == predictions  # same adapter, same scores
    assert json.loads((evaluated / "metrics.json").read_text())["metrics"] == trained["metrics"]
    assert (evaluated / "report.md").read_text().startswith("| metric | Utt Acc")


def test_a_run_shows_its_gain_over_the_untrained_model_and_what_to_run_next(tmp_path):
    outputs = tmp_path / "outputs"
    result = launch("train.py", *SMALL_RUN, "objective=fa", "prompt=sentence", "score_untrained=true", outputs=outputs)
    assert result.returncode == 0, result.stderr
    run_dir = only_run_dir(outputs, "train")
    untrained = json.loads((run_dir / "untrained" / "metrics.json").read_text())["metrics"]
    trained = json.loads((run_dir / "metrics.json").read_text())["metrics"]
    assert json.loads((run_dir / "untrained" / "predictions.json").read_text()).keys() == {
        *json.loads((run_dir / "predictions.json").read_text())
    }
    summary = (run_dir / "train.log").read_text().rpartition("PCC on 2 utterances:")[2]
    assert "| aspect | before training | after | 95% CI |" in summary
    for aspect in ("accuracy", "fluency", "total"):
        before, after = (
            f"{m[f'sentence/{aspect}/pcc']:.3f}" if m.get(f"sentence/{aspect}/pcc") is not None else "-"
            for m in (untrained, trained)
        )
        assert f"| sentence {aspect} | {before} | {after} |" in summary
    assert f"Results: {run_dir}" in summary and f"Next: python evaluate.py checkpoint={run_dir}" in summary
    assert "is_gradient_checkpointing" not in result.stderr  # PEFT's deprecation warning is filtered


def test_evaluate_labels_against_themselves(corpus, tmp_path, request):
    labels = json.loads((corpus / "resource" / "scores.json").read_text())
    test_ids = [line.split()[0] for line in (corpus / "test" / "wav.scp").read_text().splitlines()]
    assert len(test_ids) == {"synthetic": 12, "real": 300}[request.node.callspec.params["corpus"]]
    references = tmp_path / "test.json"
    references.write_text(json.dumps({uid: labels[uid] for uid in test_ids}))
    output = tmp_path / "D"
    result = launch(
        "evaluate.py",
        f"predictions={references}",
        f"references={references}",
        f"output_dir={output}",
        "logger=none",
        "bootstrap_resamples=50",
        outputs=tmp_path / "outputs",
    )
    assert result.returncode == 0, result.stderr
    report = json.loads((output / "metrics.json").read_text())
    correlations = {k: v for k, v in report["metrics"].items() if k.endswith(("/pcc", "/scc"))}
    assert len(correlations) == 2 * 9  # 5 sentence, 3 word and 1 phone aspects
    for name, value in correlations.items():
        assert value == pytest.approx(1.0) if value is not None else "constant" in report["undefined"][name]
    assert report["metrics"]["sentence/total/n"] == len(test_ids) and report["metrics"]["phone/accuracy/rmse"] == 0.0
    assert report["metrics"]["sentence/fluency/exact"] == 1.0
    assert all(c["rate"] == 1.0 for c in report["coverage"].values())
    assert (output / "report.md").is_file() and (output / "plots" / "scatter_sentence_total.png").is_file()


def test_scoring_a_predictions_file_loads_no_model_code(tmp_path):
    """evaluate.py predictions= references= imports neither torch, transformers, peft nor wandb
    (``-X importtime`` lists every module the process imports)."""
    words = [WordScores("A", 8, 10, 8, ("AH0",), (2.0,))]
    references = {f"u{i}": Scores(i, i, i, 10, i, words=tuple(words)).to_json() for i in range(4)}
    (tmp_path / "references.json").write_text(json.dumps(references))
    predictions = {uid: {"accuracy": entry["accuracy"] + 1} for uid, entry in references.items()}
    (tmp_path / "predictions.json").write_text(json.dumps(predictions))
    result = launch(
        "evaluate.py",
        f"predictions={tmp_path / 'predictions.json'}",
        f"references={tmp_path / 'references.json'}",
        f"output_dir={tmp_path / 'D'}",
        "logger=none",
        "bootstrap_resamples=10",
        outputs=tmp_path / "outputs",
        prefix=(sys.executable, "-X", "importtime"),
    )
    assert result.returncode == 0, result.stderr
    timings = [line for line in result.stderr.splitlines() if line.startswith("import time:")]
    imported = {line.rsplit("|", 1)[1].strip() for line in timings}
    assert "apa.evaluation.metrics" in imported  # the list is what the process imported
    assert {name.split(".")[0] for name in imported} & {"torch", "transformers", "peft", "wandb"} == set()
    metrics = json.loads((tmp_path / "D" / "metrics.json").read_text())["metrics"]
    assert metrics["sentence/accuracy/pcc"] == pytest.approx(1.0)


def test_evaluate_without_anything_to_score_says_what_to_give(tmp_path):
    result = launch("evaluate.py", "logger=none", outputs=tmp_path / "outputs")
    assert result.returncode != 0
    assert "give references=FILE or data=<corpus>" in result.stderr


def test_unknown_model_is_a_clear_error(tmp_path):
    result = launch("train.py", "model=no_such_model", outputs=tmp_path / "outputs")
    assert result.returncode != 0
    assert "no_such_model" in result.stderr and "qwen2_audio_7b" in result.stderr  # lists what exists
