"""The synthetic corpus: official layout, deterministic, labels that follow the degradations."""

import hashlib
import json

import numpy as np
import pytest
import soundfile

import apa.data.synthetic as synthetic
from apa.data import Speechocean762, SyntheticCorpus
from apa.data.synthetic import SyntheticSettings, generate

SMALL = SyntheticSettings(seed=3, speakers=6, utterances_per_speaker=8, test_speakers=2)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("synthetic") / "corpus", SMALL)


def tree_digest(root):
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode() + path.read_bytes())
    return digest.hexdigest()


def test_official_reader_loads_it(corpus):
    reader = Speechocean762(str(corpus))
    train, test = reader.utterances("train"), reader.utterances("test")
    assert (len(train), len(test)) == (32, 16)
    assert not {u.speaker for u in train} & {u.speaker for u in test}
    assert all(u.audio.suffix == ".WAV" and soundfile.info(u.audio).samplerate == 16000 for u in train + test)
    assert all(soundfile.info(u.audio).subtype == "PCM_16" for u in train)


def test_same_seed_same_bytes(corpus, tmp_path):
    again = generate(tmp_path / "again", SMALL)
    other = generate(
        tmp_path / "other", SyntheticSettings(seed=4, speakers=6, utterances_per_speaker=8, test_speakers=2)
    )
    assert tree_digest(again) == tree_digest(corpus) != tree_digest(other)


def test_labels_follow_the_degradations(corpus):
    labels = json.loads((corpus / "resource" / "scores.json").read_text())
    utterances = {u.id: u for s in ("train", "test") for u in Speechocean762(str(corpus)).utterances(s)}
    durations, fluency = [], []
    for uid, entry in labels.items():
        words = entry["words"]
        dropped = [w for w in words if w["total"] == 0 and all(p == 0 for p in w["phones-accuracy"])]
        assert entry["completeness"] == pytest.approx(10 * (len(words) - len(dropped)) / len(words), abs=0.05)
        for word in words:
            assert word["accuracy"] == np.floor(5 * np.mean(word["phones-accuracy"]) + 0.5)
            assert word["stress"] in (5, 10)
        spoken = [w["accuracy"] for w in words if w not in dropped]
        assert entry["accuracy"] == np.floor(np.mean(spoken) + 0.5)
        parts = (entry["accuracy"] + entry["fluency"] + entry["prosodic"]) / 3
        assert entry["total"] == np.floor(parts * entry["completeness"] / 10 + 0.5)
        durations.append(soundfile.info(utterances[uid].audio).duration / len(words))
        fluency.append(entry["fluency"])
    durations, fluency = np.array(durations), np.array(fluency)
    # pauses, repetitions and slow speech make disfluent utterances longer per word
    assert durations[fluency <= 7].mean() > durations[fluency == 10].mean() * 1.2


def test_every_degradation_occurs(corpus):
    labels = json.loads((corpus / "resource" / "scores.json").read_text())
    words = [w for e in labels.values() for w in e["words"]]
    phones = {p for w in words for p in w["phones-accuracy"]}
    assert phones == {0, 1, 2}
    assert {w["stress"] for w in words} == {5, 10}
    for aspect in ("accuracy", "fluency", "prosodic", "completeness", "total"):
        values = [e[aspect] for e in labels.values()]
        assert min(values) < 10 and max(values) == 10 and len(set(values)) >= 3, aspect


def test_missing_espeak_is_explained(monkeypatch, tmp_path):
    monkeypatch.setattr(synthetic.shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="apt-get install espeak-ng"):
        generate(tmp_path / "c", SMALL)


def test_corpus_config_generates_once(tmp_path, monkeypatch):
    corpus = SyntheticCorpus(cache_dir=str(tmp_path), seed=3, speakers=6, utterances_per_speaker=8, test_speakers=2)
    assert len(corpus.utterances("test")) == 16
    monkeypatch.setattr(synthetic, "generate", lambda *a: pytest.fail("generated twice"))
    assert len(corpus.utterances("train")) == 32
    assert corpus.path.name.startswith("synthetic-") and (corpus.path / "README.md").is_file()


def test_bad_settings_are_rejected():
    with pytest.raises(ValueError, match="test_speakers"):
        SyntheticSettings(speakers=4, test_speakers=4)


def test_command_line_writes_a_corpus(tmp_path):
    synthetic.main([str(tmp_path / "cli"), "--speakers", "3", "--utterances-per-speaker", "2", "--test-speakers", "1"])
    assert [len(Speechocean762(str(tmp_path / "cli")).utterances(s)) for s in ("train", "test")] == [4, 2]
