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


def planned_utterances(count: int, seed: int = 0) -> list:
    """``count`` labelled utterances as the synthetic corpus plans them (varied words, phones and
    degradations; labels only, nothing spoken: ``audio`` is empty)."""
    import numpy as np

    from apa.data import Utterance
    from apa.data.synthetic import make_speakers, plan_utterance

    rng = np.random.default_rng(seed)
    speakers = make_speakers(rng, 40)
    plans = [plan_utterance(rng, f"{speakers[n % 40].id}{n:05d}", speakers[n % 40]) for n in range(count)]
    return [Utterance(p.uid, p.text, b"", p.scores, p.speaker.id) for p in plans]


def billy_loves_america():
    """Utterance 000050024 of speechocean762 (its train split) with its labels, written out so that
    tests of prompts and negatives need not read the corpus."""
    from apa.data import Scores, Utterance, WordScores

    words = (
        WordScores("BILLY", 10, 10, 10, ("B", "IH1", "L", "IY0"), (2, 2, 2, 2)),
        WordScores("LOVES", 8, 10, 8, ("L", "AH0", "V", "Z"), (2, 2, 1.8, 1.4)),
        WordScores("AMERICA", 10, 10, 10, ("AH0", "M", "EH1", "R", "IH0", "K", "AH0"), (2, 2, 2, 2, 2, 1.2, 2)),
    )
    scores = Scores(accuracy=7, fluency=6, prosodic=6, completeness=10, total=7, words=words)
    return Utterance("000050024", "BILLY LOVES AMERICA", b"", scores, "0005", 6, "m")
