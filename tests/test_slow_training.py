"""Slow: every objective end to end through train.py, a real learning check, two-process training."""

import json
import re
import sys

import pytest

from .helpers import launch, only_run_dir

pytestmark = pytest.mark.slow

SMALL = [
    "model=tiny",
    "data=synthetic",
    "data.speakers=4",
    "data.utterances_per_speaker=4",
    "data.test_speakers=1",
    "trainer.arguments.max_steps=3",
    "trainer.arguments.per_device_train_batch_size=2",
    "trainer.arguments.gradient_accumulation_steps=1",
    "bootstrap_resamples=20",
]
LEARNING = [
    "model=tiny",
    "data=synthetic",
    "prompt=sentence",
    "logger=none",
    "trainer.arguments.num_train_epochs=3",
    "trainer.arguments.per_device_train_batch_size=8",
    "trainer.arguments.gradient_accumulation_steps=1",
    "trainer.arguments.learning_rate=1e-3",
    "bootstrap_resamples=200",
]


@pytest.mark.parametrize("objective", ["ce", "fa", "regression", "simpo_ce"])
def test_every_objective_end_to_end(tmp_path, objective):
    result = launch("train.py", *SMALL, "logger=none", f"objective={objective}", outputs=tmp_path / "outputs")
    assert result.returncode == 0, result.stderr
    run_dir = only_run_dir(tmp_path / "outputs", "train")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    predictions = json.loads((run_dir / "predictions.json").read_text())
    assert len(predictions) == 4  # the held-out speaker's utterances
    if objective in ("fa", "regression"):  # slots: every score of the multi prompt is read
        assert all(c["rate"] == 1.0 for c in metrics["coverage"].values()) and len(metrics["coverage"]) == 9
    else:  # free generation of a barely trained tiny model: its answers are kept, unparseable ones are missing
        assert len(json.loads((run_dir / "answers.json").read_text())) == 4


@pytest.mark.parametrize("objective", ["fa", "regression"])
def test_learns_the_synthetic_degradations(tmp_path, objective):
    """400 espeak-ng utterances (80 held out): three CPU epochs of the tiny model must score the
    held-out speakers clearly better than chance."""
    result = launch("train.py", *LEARNING, f"objective={objective}", outputs=tmp_path / "outputs")
    assert result.returncode == 0, result.stderr
    report = json.loads((only_run_dir(tmp_path / "outputs", "train") / "metrics.json").read_text())
    assert report["metrics"]["sentence/fluency/pcc"] > 0.5
    assert report["metrics"]["sentence/total/pcc"] > 0.3
    assert report["ci95"]["sentence/total/pcc"][0] > 0  # the interval excludes zero


LAUNCHERS = {
    "torchrun": (sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"),
    "accelerate": (sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2"),
}


@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_two_processes_train_one_adapter(tmp_path, launcher):
    outputs = tmp_path / "outputs"
    result = launch("train.py", *SMALL, "logger=wandb", "objective=fa", outputs=outputs, prefix=LAUNCHERS[launcher])
    assert result.returncode == 0, result.stderr
    fingerprints = {
        process: fp
        for fp, process in re.findall(r"adapter fingerprint (\w+) \(process (\d)\)", result.stdout + result.stderr)
    }
    assert set(fingerprints) == {"0", "1"} and len(set(fingerprints.values())) == 1  # identical adapters
    run_dirs = list((outputs / "train" / "runs").iterdir())
    with_results = [d for d in run_dirs if (d / "metrics.json").is_file()]
    assert len(with_results) == 1  # only rank 0 saves and evaluates
    assert len(list(with_results[0].glob("wandb/offline-run-*"))) == 1  # and only rank 0 tracks
    state = json.loads((with_results[0] / "checkpoints" / "checkpoint-3" / "trainer_state.json").read_text())
    assert state["global_step"] == 3
    assert state["epoch"] == pytest.approx(1.0)  # 3 steps of 2 processes x 2 examples: all 12 examples once
