"""Slow: every paper preset runs a step on the tiny model; multiruns survive a crash; Optuna gets the metric."""

import json

import pytest
import yaml

from .helpers import compose_config, launch
from .test_sweeps import TRAINING_PRESETS

pytestmark = pytest.mark.slow

TINY_SLICE = [
    "model=tiny",
    "data=synthetic",
    "data.speakers=4",
    "data.utterances_per_speaker=2",
    "data.test_speakers=1",
    "trainer.arguments.max_steps=1",
    "trainer.arguments.bf16=false",
    "trainer.arguments.gradient_accumulation_steps=1",
    "bootstrap_resamples=10",
    "decoding.max_new_tokens=16",
]


@pytest.mark.parametrize("name", TRAINING_PRESETS)
def test_every_training_preset_runs_a_step(tmp_path, name, speechocean762):
    """The preset on the tiny model and a slice of its data (the real subset for speechocean762
    presets, a small synthetic corpus otherwise), so that no preset can rot."""
    preset = compose_config("train", [f"experiment={name}"])
    overrides = [f"experiment={name}", *TINY_SLICE, "logger=none"]
    if preset.data._target_.endswith("Speechocean762"):
        overrides = [o for o in overrides if not o.startswith("data")] + [f"data.root={speechocean762}", "limit=6"]
    if not (preset.get("decoding") or {}).get("_target_", "").endswith("GenerationDecoder"):
        overrides.remove("decoding.max_new_tokens=16")  # only generation has it
    result = launch("train.py", *overrides, outputs=tmp_path / "outputs")
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = (tmp_path / "outputs" / name / "runs").iterdir()
    assert (run_dir / "metrics.json").is_file() and (run_dir / "adapter" / "adapter_config.json").is_file()


def test_zero_shot_preset_runs(tmp_path):
    overrides = [
        "experiment=parikh2025_zeroshot",
        "model=tiny",
        "data=synthetic",
        "data.speakers=3",
        "data.utterances_per_speaker=1",
        "data.test_speakers=1",
        "decoding.max_new_tokens=16",
        "logger=none",
        "bootstrap_resamples=10",
    ]
    result = launch("evaluate.py", *overrides, outputs=tmp_path / "outputs")
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = (tmp_path / "outputs" / "parikh2025_zeroshot" / "runs").iterdir()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert set(metrics["coverage"]) == {f"sentence/{a}" for a in ("accuracy", "fluency", "prosodic", "completeness")}
    assert len(json.loads((run_dir / "predictions.json").read_text())) == 3  # train and test splits together


def test_a_crashed_job_does_not_stop_the_multirun(tmp_path):
    sweep = ["-m", "objective=fa,ce", "prompt=sentence", "prompt.score_tokens=digits", *TINY_SLICE[:-1], "logger=wandb"]
    result = launch("train.py", *sweep, outputs=tmp_path / "outputs")
    assert "objective fa: needs one token per score class" in result.stderr  # job 0 failed...
    (sweep_dir,) = (tmp_path / "outputs" / "train" / "multiruns").iterdir()
    assert not (sweep_dir / "0" / "metrics.json").exists()
    assert (sweep_dir / "1" / "metrics.json").is_file()  # ...job 1 still ran
    (record,) = (sweep_dir / "1" / "wandb").glob("offline-run-*/run-*.wandb")
    assert f"train-{sweep_dir.name}".encode() in record.read_bytes()  # grouped by sweep


def test_optuna_receives_each_jobs_metric(tmp_path):
    sweep = [
        "-m",
        "hydra/sweeper=optuna_lr_rank",
        "hydra.sweeper.n_trials=2",
        "objective=fa",
        "prompt=sentence",
        *TINY_SLICE[:-1],
        "data.utterances_per_speaker=4",
        "logger=none",
    ]
    result = launch("train.py", *sweep, outputs=tmp_path / "outputs")
    assert result.returncode == 0, result.stderr[-3000:]
    (results,) = (tmp_path / "outputs" / "train" / "multiruns").glob("*/optimization_results.yaml")
    best = yaml.safe_load(results.read_text())
    assert -1 <= best["best_value"] <= 1 and set(best["best_params"]) == {"trainer.arguments.learning_rate", "lora.r"}
