"""Shared fixtures: offline environment, the tiny model, a synthetic corpus and the real speechocean762
subset, configs."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import pytest

from bench.common import compose_run

from .helpers import PROJECT_ROOT, planned_utterances

# The real subset beside the repository; APA_TEST_SPEECHOCEAN762 points elsewhere (a path that does
# not exist shows what runs without it).
SHARED_DATA = Path(
    os.environ.get("APA_TEST_SPEECHOCEAN762") or PROJECT_ROOT.parent / "shared" / "data" / "speechocean762"
).expanduser()

# Tests never reach a model hub or W&B's servers.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["WANDB_MODE"] = "offline"
os.environ["WANDB_SILENT"] = "true"


@pytest.fixture(scope="session", autouse=True)
def apa_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Built models go to a per-session folder unless the developer points APA_CACHE elsewhere."""
    if "APA_CACHE" in os.environ:
        yield Path(os.environ["APA_CACHE"]).expanduser()
        return
    cache = tmp_path_factory.mktemp("apa-cache")
    os.environ["APA_CACHE"] = str(cache)
    yield cache
    del os.environ["APA_CACHE"]


@pytest.fixture(scope="session")
def tiny_source(apa_cache: Path):
    from apa.models.offline import TinyQwen2Audio

    source = TinyQwen2Audio(cache_dir=str(apa_cache / "models"))
    source.build()
    return source


@pytest.fixture
def tiny(tiny_source):
    """A fresh tiny model and processor (tests may train or wrap it)."""
    return tiny_source.load()


@pytest.fixture(scope="session")
def speechocean762() -> Path:
    if not (SHARED_DATA / "resource" / "scores.json").is_file():
        pytest.skip(
            f"reads the real speechocean762 subset itself (its files, labels or lexicon), which is not at "
            f"{SHARED_DATA} (../shared is absent, or APA_TEST_SPEECHOCEAN762 points elsewhere)"
        )
    return SHARED_DATA


# A small synthetic corpus in the official layout (espeak-ng, see apa.data.synthetic), so that the
# tests of the audio, encoding, forward and decoding paths run without the real subset.
SYNTHETIC = {"seed": 7, "speakers": 5, "utterances_per_speaker": 6, "test_speakers": 2}
CORPORA = ["synthetic", "real"]


@pytest.fixture(scope="session")
def synthetic_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 test and 18 train utterances the project speaks itself (about a second to make)."""
    from apa.data.synthetic import SyntheticSettings, generate

    return generate(tmp_path_factory.mktemp("synthetic") / "speechocean762", SyntheticSettings(**SYNTHETIC))


def skip_the_real_variant() -> None:
    if not (SHARED_DATA / "resource" / "scores.json").is_file():
        pytest.skip(f"the real-subset variant (the synthetic one runs): no speechocean762 subset at {SHARED_DATA}")


@pytest.fixture(scope="session", params=CORPORA)
def corpus(request: pytest.FixtureRequest) -> Path:
    """A corpus in the official layout: the synthetic one (always there) and the real subset
    (skipped when absent)."""
    if request.param == "real":
        skip_the_real_variant()
    return request.getfixturevalue("synthetic_corpus" if request.param == "synthetic" else "speechocean762")


@pytest.fixture(scope="session", params=CORPORA)
def labelled_utterances(request: pytest.FixtureRequest) -> list:
    """Many utterances' labels (no audio needed): 400 planned synthetic ones (the generator's plans,
    not spoken), or every utterance of the real subset (skipped when absent)."""
    if request.param == "real":
        from apa.data import Speechocean762

        skip_the_real_variant()
        reader = Speechocean762(str(request.getfixturevalue("speechocean762")))
        return reader.utterances("train") + reader.utterances("test")
    return planned_utterances(400)


@pytest.fixture(scope="session")
def real_wav(speechocean762: Path) -> Path:
    """The real subset's first recording (000050003, MIKE LIKES THE WHITE ONE), for tests of what
    only it has; ``recording`` is any corpus's."""
    return min((speechocean762 / "WAVE").glob("SPEAKER*/*.WAV"))


@pytest.fixture(scope="session")
def recording(corpus: Path) -> Path:
    """The first utterance of the corpus: 16 kHz, 16-bit mono PCM with the upper-case .WAV suffix."""
    return min((corpus / "WAVE").glob("SPEAKER*/*.WAV"))


@pytest.fixture
def labelled_batch(tiny, recording):
    """One real utterance with a scored answer, prompt tokens masked with -100: (audio, model inputs)."""
    from apa.data.audio import load_audio

    _, processor = tiny
    audio = load_audio(recording)
    user = [{"type": "audio", "audio": str(recording)}, {"type": "text", "text": "Rate the pronunciation."}]
    prompt = processor.apply_chat_template(
        [{"role": "user", "content": user}], add_generation_prompt=True, tokenize=False
    )
    answer = "Sentence Scores: 8 8 9 10 8<|im_end|>\n"
    encode = partial(processor, audio=[audio], sampling_rate=16000, return_tensors="pt")
    prompt_ids, inputs = encode(text=[prompt])["input_ids"], encode(text=[prompt + answer])
    labels = inputs["input_ids"].clone()
    labels[:, : prompt_ids.shape[1]] = -100
    return audio, {**inputs, "labels": labels}


@pytest.fixture(scope="session")
def test_utterances(corpus):
    """The first four utterances of the corpus's test split."""
    from apa.data import Speechocean762

    return Speechocean762(str(corpus)).utterances("test")[:4]


@pytest.fixture
def multi_setup(tiny, test_utterances, tmp_path):
    """The tiny model with score tokens, the ``multi`` prompt and cached features of the utterances."""
    from apa.data import FeatureCache
    from apa.models.score_tokens import add_score_tokens

    from .helpers import load_prompt

    model, processor = tiny
    prompt = load_prompt("multi")
    add_score_tokens(model, processor.tokenizer, prompt.vocabulary)
    table = FeatureCache(str(tmp_path / "features")).load(test_utterances, processor.feature_extractor)
    return model, processor, prompt, table


@pytest.fixture
def scored_runs(tmp_path):
    """Two run folders as train.py leaves them (metrics, predictions, references, config), for 40
    labelled (synthetic) utterances: a close system and a noisy one."""
    import numpy as np
    import yaml

    from apa.data.records import Scores
    from apa.evaluation.metrics import evaluate
    from apa.evaluation.report import predictions_json, write_json, write_report

    utterances = planned_utterances(40)
    references = {u.id: u.scores for u in utterances}
    folders = []
    for name, noise in (("close", 0.5), ("noisy", 2.5)):
        rng = np.random.default_rng(len(name))
        predictions = {
            uid: Scores(
                **{
                    a: float(np.clip(s.aspect(a) + rng.normal(0, noise), 0, 10))
                    for a in ("accuracy", "fluency", "prosodic", "total")
                }
            )
            for uid, s in references.items()
        }
        folder = tmp_path / "runs" / name
        write_report(folder, evaluate(predictions, references, resamples=100))
        write_json(folder / "predictions.json", predictions_json(predictions))
        write_json(folder / "references.json", predictions_json(references))
        config = {"objective": {"_target_": "apa.objectives.FairAverage"}, "prompt": {"name": "sentence"}}
        (folder / "config.yaml").write_text(yaml.safe_dump(config))
        folders.append(folder)
    return folders


@pytest.fixture
def compose(tmp_path: Path) -> Iterator[Callable]:
    """Compose ``conf/<name>.yaml`` with overrides, as ``python <name>.py`` would, with its run
    folder in ``tmp_path``; returns the job's config (Hydra's own node left out)."""
    from hydra.core.global_hydra import GlobalHydra

    yield lambda name, overrides=(): compose_run(name, overrides, tmp_path / "run")
    GlobalHydra.instance().clear()


@pytest.fixture
def datasets_progress_bars() -> Iterator[None]:
    """datasets' progress bars on, as a fresh process has them (`apa score` in this process turns
    them off), and as they were afterwards."""
    import datasets

    disabled_before = datasets.are_progress_bars_disabled()
    datasets.enable_progress_bars()
    yield
    if disabled_before:
        datasets.disable_progress_bars()
