"""Helpers the tests share: where the configs are, and composing one without a run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = PROJECT_ROOT / "conf"
PROMPT_NAMES = sorted(path.stem for path in (CONF_DIR / "prompt").glob("*.yaml"))


def compose_config(name: str, overrides: list[str] = ()):
    """``conf/<name>.yaml`` composed with overrides (interpolations to Hydra's run dir unresolved)."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name=name, overrides=list(overrides))
    GlobalHydra.instance().clear()
    return cfg


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
