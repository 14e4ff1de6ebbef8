"""train.py and evaluate.py run from the command line, as a user starts them."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def launch(script: str, *overrides: str, outputs: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "APA_OUTPUTS": str(outputs)}
    command = [sys.executable, str(ROOT / script), *overrides]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, cwd=outputs.parent)


def only_run_dir(outputs: Path, task: str) -> Path:
    (run_dir,) = (outputs / task / "runs").iterdir()
    return run_dir


@pytest.mark.parametrize("script", ["train.py", "evaluate.py"])
def test_runs_on_the_tiny_model(tmp_path, script):
    task = script.removesuffix(".py")
    result = launch(script, "model=tiny", "logger=none", outputs=tmp_path / "outputs")
    assert result.returncode == 0, result.stderr
    run_dir = only_run_dir(tmp_path / "outputs", task)
    config = yaml.safe_load((run_dir / ".hydra" / "config.yaml").read_text())
    assert config["model"]["_target_"] == "apa.models.TinyQwen2Audio"
    assert config["task_name"] == task
    log = (run_dir / f"{task}.log").read_text()
    if task == "train":
        assert "LoRA r=16 on 14 modules in language_model" in log
    assert "model" in log and "ready" in log


def test_unknown_model_is_a_clear_error(tmp_path):
    result = launch("train.py", "model=no_such_model", outputs=tmp_path / "outputs")
    assert result.returncode != 0
    assert "no_such_model" in result.stderr and "qwen2_audio_7b" in result.stderr  # lists what exists
