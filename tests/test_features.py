"""The feature cache gives exactly the processor's features, once per content and extractor config."""

import dataclasses
import shutil

import datasets
import numpy as np
import pytest
import soundfile
from transformers import WhisperFeatureExtractor

import apa.data.features as features_module
from apa.data import FeatureCache, Speechocean762, load_audio


@pytest.fixture(scope="module")
def utterances(corpus):
    return Speechocean762(str(corpus)).utterances("test")[:12]


@pytest.fixture
def extractor():
    return WhisperFeatureExtractor(feature_size=128, sampling_rate=16000, return_attention_mask=True)


def test_cached_features_equal_the_processors(tiny, utterances, tmp_path):
    _, processor = tiny
    table = FeatureCache(str(tmp_path)).load(utterances, processor.feature_extractor)
    assert len(table) == len(utterances)
    for utterance in utterances[:4]:
        audio = load_audio(utterance.audio)
        reference = processor(text=["<|AUDIO|>"], audio=[audio], sampling_rate=16000, return_tensors="np")
        (chunk,) = table.chunks(utterance.id)
        assert chunk.features.shape == (128, 3000) and chunk.features.dtype == np.float32
        assert np.array_equal(chunk.features, reference["input_features"][0])
        assert chunk.mel_frames == reference["feature_attention_mask"][0].sum()


def test_second_load_reuses_the_cache(utterances, extractor, tmp_path, monkeypatch):
    FeatureCache(str(tmp_path)).load(utterances, extractor)
    monkeypatch.setattr(features_module, "extract", lambda *a: pytest.fail("features were computed again"))
    table = FeatureCache(str(tmp_path)).load(utterances, extractor)
    assert utterances[0].id in table
    assert len(list(tmp_path.glob("features-*"))) == 1 and not list(tmp_path.glob(".*building*"))


def test_building_shows_one_progress_bar_and_leaves_datasets_bars_as_they_were(
    utterances, extractor, tmp_path, capfd, datasets_progress_bars
):
    """datasets' generator and writer bars would print onto the cache's own line."""
    FeatureCache(str(tmp_path)).load(utterances, extractor)
    shown = capfd.readouterr().err
    assert "Whisper features" in shown
    assert "Generating train split" not in shown and "Saving the dataset" not in shown
    assert not datasets.are_progress_bars_disabled()  # the caller's choice is restored


def test_changed_audio_or_extractor_builds_a_new_cache(utterances, extractor, tmp_path):
    cache = FeatureCache(str(tmp_path / "cache"))
    cache.load(utterances[:3], extractor)
    copied = tmp_path / "copy.WAV"
    shutil.copy(utterances[0].audio, copied)
    data = bytearray(copied.read_bytes())
    middle = len(data) // 4 * 2  # a sample mid-speech: silence (synthetic audio ends in zeros) hides small changes
    data[middle + 1] ^= 0x40  # one sample differs, same file name and size
    copied.write_bytes(bytes(data))
    changed = [dataclasses.replace(utterances[0], audio=copied), *utterances[1:3]]
    before = cache.load(utterances[:3], extractor).chunks(changed[0].id)[0].features
    after = cache.load(changed, extractor).chunks(changed[0].id)[0].features
    assert len(list((tmp_path / "cache").glob("features-*"))) == 2
    assert not np.array_equal(before, after)
    other = WhisperFeatureExtractor(feature_size=80, sampling_rate=16000, return_attention_mask=True)
    assert cache.load(utterances[:3], other).chunks(utterances[0].id)[0].features.shape == (80, 3000)
    assert len(list((tmp_path / "cache").glob("features-*"))) == 3


def test_long_and_full_length_audio(utterances, extractor, tmp_path):
    long = np.tile(load_audio(utterances[0].audio), 30)[: (65 * 16000)]  # 65 s: three chunks
    exact = np.resize(load_audio(utterances[1].audio), 30 * 16000)  # exactly 30 s: no padding at all
    long_path, exact_path = tmp_path / "long.wav", tmp_path / "exact.wav"
    soundfile.write(long_path, long, 16000)
    soundfile.write(exact_path, exact, 16000)
    records = [
        dataclasses.replace(utterances[0], id="long", audio=long_path),
        dataclasses.replace(utterances[1], id="exact", audio=exact_path),
    ]
    table = FeatureCache(str(tmp_path / "cache")).load(records, extractor)
    chunks = table.chunks("long")
    assert len(chunks) == 3 and sum(c.mel_frames for c in chunks) == pytest.approx(6500, abs=3)
    (full,) = table.chunks("exact")
    reference = extractor(load_audio(exact_path), sampling_rate=16000, return_tensors="np")["input_features"][0]
    assert full.mel_frames == 3000 and np.array_equal(full.features, reference)
