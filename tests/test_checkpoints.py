"""Checkpoints are complete or absent: a run killed while it saves resumes from the newest complete
checkpoint and ends with the adapter of an uninterrupted run; bad settings fail before the model loads."""

import json
import logging
import signal
import subprocess
import sys

import pytest
import torch
from safetensors.torch import save_file

from apa import training
from apa.jobs import train_job
from apa.training.checkpoints import CheckpointError, newest_complete_checkpoint

from .helpers import PROJECT_ROOT
from .test_training import NeverLoaded, adapter, overrides

SAVE_EVERY_2 = ["trainer.arguments.save_steps=2", "prompt=sentence", "trainer.arguments.lr_scheduler_type=cosine"]

# train.py in a child process that sends itself ``signal`` in the middle of saving checkpoint ``step``:
# after the adapter, optimizer and scheduler are written, before the RNG states and the trainer state.
KILLED_WHILE_SAVING = """
import os, runpy, signal, sys
sys.path.insert(0, {root!r})
from apa.training.trainer import ScoringTrainer
save_rng_state = ScoringTrainer._save_rng_state

def interrupted(self, output_dir):
    if self.state.global_step == {step}:
        os.kill(os.getpid(), signal.{signal})
    save_rng_state(self, output_dir)

ScoringTrainer._save_rng_state = interrupted
sys.argv = [{script!r}, *sys.argv[1:]]
runpy.run_path({script!r}, run_name="__main__")
"""


def train_killed_while_saving(run_dir, kill: signal.Signals, step: int) -> subprocess.CompletedProcess:
    script = KILLED_WHILE_SAVING.format(
        root=str(PROJECT_ROOT), script=str(PROJECT_ROOT / "train.py"), step=step, signal=kill.name
    )
    command = [sys.executable, "-c", script, *overrides("fa", 4, *SAVE_EVERY_2), f"hydra.run.dir={run_dir}"]
    return subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=PROJECT_ROOT)


@pytest.mark.parametrize("kill", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_run_killed_while_saving_resumes_to_the_same_adapter(compose, tmp_path, kill, caplog):
    whole = train_job(compose("train", overrides("fa", 4, *SAVE_EVERY_2)))
    training.run(whole)

    run_dir = tmp_path / "killed"
    result = train_killed_while_saving(run_dir, kill, step=4)
    assert result.returncode != 0, result.stderr
    checkpoints = run_dir / "checkpoints"
    # checkpoint-4 never appears half-written; a SIGKILLed save leaves only its hidden staging folder
    leftovers = [".checkpoint-4.saving"] if kill == signal.SIGKILL else []
    assert sorted(p.name for p in checkpoints.iterdir()) == sorted(["checkpoint-2", *leftovers])
    assert not (run_dir / "adapter").exists()

    resumed = train_job(compose("train", overrides("fa", 4, *SAVE_EVERY_2, "trainer.resume=true")))
    resumed.output_dir = run_dir
    with caplog.at_level(logging.INFO, logger="apa.training.checkpoints"):
        training.run(resumed)
    assert f"resuming from {checkpoints / 'checkpoint-2'}" in caplog.text
    if leftovers:
        assert "skipped the newer, incomplete .checkpoint-4.saving (a save that was interrupted)" in caplog.text
    expected, got = adapter(whole.output_dir), adapter(run_dir)
    assert expected.keys() == got.keys()
    for name in expected:
        assert torch.allclose(expected[name], got[name], atol=1e-6), name
    assert sorted(p.name for p in checkpoints.iterdir()) == ["checkpoint-2", "checkpoint-4"]  # staging cleared


def test_a_run_killed_in_its_first_save_has_nothing_to_resume(compose, tmp_path):
    run_dir = tmp_path / "killed"
    assert train_killed_while_saving(run_dir, signal.SIGKILL, step=2).returncode == -signal.SIGKILL
    job = train_job(compose("train", overrides("fa", 4, *SAVE_EVERY_2, "trainer.resume=true")))
    job.output_dir, job.model = run_dir, NeverLoaded()
    with pytest.raises(CheckpointError, match=r"no complete checkpoint .*\.checkpoint-2\.saving \(a save that was"):
        training.run(job)


def write_checkpoint(folder, step: int) -> None:
    """The files of a Trainer checkpoint (placeholders, but in their real formats)."""
    folder.mkdir(parents=True)
    save_file({"w": torch.zeros(2)}, folder / "adapter_model.safetensors")
    (folder / "adapter_config.json").write_text("{}")
    for name in ("optimizer.pt", "scheduler.pt", "rng_state.pth"):
        torch.save({"step": step}, folder / name)
    (folder / "trainer_state.json").write_text(json.dumps({"global_step": step}))


def test_resume_takes_the_newest_complete_checkpoint_and_names_the_skipped(tmp_path, caplog):
    """Half-written folders as transformers' own in-place saving leaves them."""
    for step in (2, 4, 6, 8, 10):
        write_checkpoint(tmp_path / f"checkpoint-{step}", step)
    (tmp_path / "checkpoint-10" / "trainer_state.json").unlink()  # killed before the last file
    (tmp_path / "checkpoint-8" / "trainer_state.json").write_text('{"global_step": ')  # cut mid-write
    weights = tmp_path / "checkpoint-6" / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:20])  # truncated
    optimizer = tmp_path / "checkpoint-4" / "optimizer.pt"
    optimizer.write_bytes(optimizer.read_bytes()[:-30])  # zip directory cut off
    with caplog.at_level(logging.WARNING):
        assert newest_complete_checkpoint(tmp_path) == tmp_path / "checkpoint-2"
    for skipped in (
        "checkpoint-10 (trainer_state.json is missing)",
        "checkpoint-8 (trainer_state.json is unreadable",
        "checkpoint-6 (adapter_model.safetensors is unreadable",
        "checkpoint-4 (optimizer.pt is not a complete torch.save file)",
    ):
        assert skipped in caplog.text


def test_resume_without_any_checkpoint_fails_before_the_model_loads(compose, tmp_path):
    job = train_job(compose("train", overrides("fa", 1, "prompt=sentence", "trainer.resume=true")))
    job.model = NeverLoaded()
    with pytest.raises(CheckpointError, match=r"checkpoints does not exist: nothing to resume .*hydra\.run\.dir"):
        training.run(job)
    (job.output_dir / "checkpoints" / "checkpoint-3").mkdir(parents=True)
    with pytest.raises(CheckpointError, match=r"no complete checkpoint .*checkpoint-3 \(adapter_config\.json is"):
        training.run(job)


def test_a_checkpoint_that_cannot_be_loaded_is_named(compose, tmp_path):
    job = train_job(compose("train", overrides("fa", 2, *SAVE_EVERY_2)))
    training.run(job)
    checkpoint = job.output_dir / "checkpoints" / "checkpoint-2"
    torch.save({"not": "an optimizer state"}, checkpoint / "optimizer.pt")  # readable, but not this optimizer's
    resumed = train_job(compose("train", overrides("fa", 4, *SAVE_EVERY_2, "trainer.resume=true")))
    with pytest.raises(CheckpointError, match=rf"{checkpoint}: cannot load optimizer\.pt or scheduler\.pt"):
        training.run(resumed)


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("lora.r=0", r"lora\.r=0: expected the adapter's rank"),
        ("lora.r=-4", r"lora\.r=-4"),
        ("lora.lora_alpha=0", r"lora\.lora_alpha=0: expected a positive number"),
        ("lora.lora_dropout=1.5", r"lora\.lora_dropout=1\.5: expected a probability"),
        ("trainer.arguments.learning_rate=-1e-4", r"learning_rate=-0\.0001: expected a positive number"),
        ("trainer.arguments.learning_rate=0", r"learning_rate=0: expected a positive number"),
        ("trainer.arguments.per_device_train_batch_size=0", r"per_device_train_batch_size=0"),
    ],
)
def test_bad_settings_fail_before_the_model_loads(compose, setting, message):
    job = train_job(compose("train", overrides("fa", 1, "prompt=sentence", setting)))
    job.model = NeverLoaded()
    with pytest.raises(ValueError, match=message):
        training.run(job)


def test_the_best_checkpoint_is_recorded_where_it_ends_up(compose):
    """The Trainer notes the best checkpoint while it writes it (into the staging folder)."""
    from .test_dev_split import DEV_SELECTION

    job = train_job(compose("train", overrides("regression", 2, "prompt=sentence", *DEV_SELECTION)))
    training.run(job)
    checkpoints = job.output_dir / "checkpoints"
    for step in (1, 2):
        state = json.loads((checkpoints / f"checkpoint-{step}" / "trainer_state.json").read_text())
        assert state["best_model_checkpoint"] in {str(checkpoints / "checkpoint-1"), str(checkpoints / "checkpoint-2")}
