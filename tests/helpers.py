"""Helpers the tests share: where the configs are, composing one without a run (with the
benchmarks' :func:`~bench.common.compose_config`, as bench may not import the tests), launching an
entry point."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from hydra.utils import instantiate

from bench.common import compose_config

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = PROJECT_ROOT / "conf"
PROMPT_NAMES = sorted(path.stem for path in (CONF_DIR / "prompt").glob("*.yaml"))


def load_prompt(name: str, **overrides):
    """The prompt ``conf/prompt/<name>.yaml`` instantiates, with ``prompt.<key>=<value>`` overrides."""
    extra = [f"prompt.{key}={value}" for key, value in overrides.items()]
    return instantiate(compose_config("train", [f"prompt={name}", *extra]).prompt)


def launch(script: str, *overrides: str, outputs: Path, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """Run an entry point as a user would (``prefix`` such as torchrun's), runs under ``outputs``."""
    env = {**os.environ, "APA_OUTPUTS": str(outputs)}
    target = [script] if script == "-m" else [str(PROJECT_ROOT / script)]
    command = [*(prefix or (sys.executable,)), *target, *overrides]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=1800, cwd=outputs.parent)


def only_run_dir(outputs: Path, task: str) -> Path:
    (run_dir,) = (outputs / task / "runs").iterdir()
    return run_dir
