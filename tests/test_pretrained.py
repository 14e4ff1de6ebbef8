"""The shipped adapter (pretrained/mini-speechocean762): a complete run folder, small, and loading it
rebuilds exactly the model that was evaluated (its committed test predictions come out again)."""

import json
import os
import re
import shlex
import subprocess
import sys

import pytest

from apa import score
from apa.data import Speechocean762
from apa.data.records import read_scores
from apa.evaluation import Detection
from apa.evaluation.metrics import evaluate
from apa.runs import ADAPTER_DIR, METRICS, PREDICTIONS, REFERENCES
from apa.trained_run import TrainedRun

from .helpers import PROJECT_ROOT

SHIPPED = score.PRETRAINED
CHECKED = 4  # test utterances decoded again (the whole split is `evaluate.py checkpoint=pretrained/...`)


def test_the_shipped_folder_is_a_small_run_folder_with_its_own_evaluation():
    run = TrainedRun.open(SHIPPED)
    assert set(run.prompt.aspects) == {"sentence", "word", "phone"} and run.decoder().name == "slots"
    size = sum(path.stat().st_size for path in SHIPPED.rglob("*") if path.is_file())
    assert size < 25e6, f"{size / 1e6:.1f} MB"
    assert not list(SHIPPED.rglob("*.bin")) and not list(SHIPPED.rglob("*.pt"))  # no pickles: safetensors only
    predictions = read_scores(SHIPPED / PREDICTIONS, complete=False).scores
    references = read_scores(SHIPPED / REFERENCES).scores
    committed = json.loads((SHIPPED / METRICS).read_text())["metrics"]
    detection = run.detection(Detection())  # the threshold its dev split chose (dev-split/ holds that evidence)
    assert detection.threshold == pytest.approx(Detection().chosen_on(*dev_split()).threshold)
    recomputed = evaluate(predictions, references, resamples=0, detection=detection).metrics
    assert committed == pytest.approx(recomputed, abs=1e-9)
    assert (SHIPPED / "README.md").read_text().count(f"{committed['sentence/total/pcc']:.3f}") >= 1  # the card's figure


def dev_split():
    """The shipped adapter's predictions on its development split and their references."""
    folder = SHIPPED / "dev-split"
    return read_scores(folder / PREDICTIONS, complete=False).scores, read_scores(folder / REFERENCES).scores


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_loading_the_shipped_adapter_reproduces_its_predictions(speechocean762, apa_cache):
    run = TrainedRun.open(SHIPPED)
    utterances = Speechocean762(str(speechocean762)).utterances("test")[:CHECKED]
    decoded = score.predict(run, run.load(), utterances, apa_cache)
    committed = read_scores(SHIPPED / PREDICTIONS, complete=False).scores
    for utterance in utterances:
        got, expected = score_values(decoded[utterance.id]), score_values(committed[utterance.id])
        assert got == pytest.approx(expected, abs=2e-3), utterance.id  # predictions.json keeps 3 decimals or more
    assert (SHIPPED / ADAPTER_DIR / "adapter_model.safetensors").is_file()


def score_values(scores) -> list[float]:
    sentence = [scores.accuracy, scores.fluency, scores.prosodic, scores.completeness, scores.total]
    words = [v for w in scores.words for v in (w.accuracy, w.stress, w.total, *w.phones_accuracy)]
    return [*sentence, *words]


def readme_command(start: str) -> list[str]:
    """The README's first command line that starts with ``start``, split as a shell splits it."""
    lines = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    return shlex.split(next(line for line in lines if line.startswith(start)))


def test_the_readmes_score_example_runs_from_the_checkout(apa_cache):
    """The README's `apa score` command, exactly, from the repository's root: its recording is
    committed (examples/), so it needs nothing beside the checkout; it prints every granularity,
    and the sentence scores the README shows."""
    command = readme_command(".venv/bin/apa score examples/")
    env = {**os.environ, "APA_CACHE": str(apa_cache), "COLUMNS": "120"}
    result = subprocess.run(
        [sys.executable, "-m", "apa", *command[1:]], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert '000240010  "IT WAS GOOD FOR ME"' in result.stdout
    assert "sentence (0-10)" in result.stdout and "words (0-10) and phones (0-2)" in result.stdout
    for word in ("IT", "WAS", "GOOD", "FOR", "ME"):
        row = next(line for line in result.stdout.splitlines() if line.startswith(f"│ {word} "))
        assert re.search(r"[A-Z]+[0-2]? [0-2]\.\d", row), row  # the word's phones, each with its score
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    sentence_row = result.stdout.split("┡")[1].splitlines()[1]
    assert sentence_row in readme  # the README shows what it prints
