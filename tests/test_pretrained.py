"""The shipped adapter (pretrained/mini-speechocean762): a complete run folder, small, and loading it
rebuilds exactly the model that was evaluated (its committed test predictions come out again)."""

import json

import pytest

from apa import score
from apa.data import Speechocean762
from apa.data.records import read_scores
from apa.evaluation.metrics import evaluate
from apa.runs import ADAPTER_DIR, METRICS, PREDICTIONS, REFERENCES
from apa.trained_run import TrainedRun

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
    assert committed == pytest.approx(evaluate(predictions, references, resamples=0).metrics, abs=1e-9)
    assert (SHIPPED / "README.md").read_text().count(f"{committed['sentence/total/pcc']:.3f}") >= 1  # the card's figure


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
