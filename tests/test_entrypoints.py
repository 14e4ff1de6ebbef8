"""train.py and evaluate.py run from the command line, as a user starts them."""

import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def launch(script: str, *overrides: str, outputs: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "APA_OUTPUTS": str(outputs)}
    command = [sys.executable, str(ROOT / script), *overrides]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, cwd=outputs.parent)


def only_run_dir(outputs: Path, task: str) -> Path:
    (run_dir,) = (outputs / task / "runs").iterdir()
    return run_dir


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


def test_train_runs_on_the_tiny_model(tmp_path):
    result = launch("train.py", *SMALL_RUN, "objective=fa", outputs=tmp_path / "outputs")
    assert result.returncode == 0, result.stderr
    run_dir = only_run_dir(tmp_path / "outputs", "train")
    config = yaml.safe_load((run_dir / ".hydra" / "config.yaml").read_text())
    assert config["model"]["_target_"] == "apa.models.TinyQwen2Audio"
    assert config["objective"]["_target_"] == "apa.objectives.FairAverage"
    assert (run_dir / "adapter" / "adapter_model.safetensors").is_file()
    assert (run_dir / "adapter" / "tokenizer.json").is_file()  # with the added score tokens
    log = (run_dir / "train.log").read_text()
    assert "LoRA r=16 on 14 modules in language_model" in log and "adapter fingerprint" in log


def test_evaluate_runs_on_the_tiny_model(tmp_path):
    result = launch("evaluate.py", "model=tiny", "logger=none", outputs=tmp_path / "outputs")
    assert result.returncode == 0, result.stderr
    run_dir = only_run_dir(tmp_path / "outputs", "evaluate")
    assert "model ready" in (run_dir / "evaluate.log").read_text()


def test_unknown_model_is_a_clear_error(tmp_path):
    result = launch("train.py", "model=no_such_model", outputs=tmp_path / "outputs")
    assert result.returncode != 0
    assert "no_such_model" in result.stderr and "qwen2_audio_7b" in result.stderr  # lists what exists
