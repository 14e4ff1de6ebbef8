"""speechocean762 readers: the real subset, the hub layout, and every kind of bad entry."""

import dataclasses
import json
import logging
import shutil

import numpy as np
import pytest
import soundfile

from apa.data import CorpusError, LabelError, Speechocean762, Speechocean762Hub, load_audio
from apa.data.speechocean762 import KALDI_FILES


def test_reads_the_real_subset(speechocean762):
    corpus = Speechocean762(str(speechocean762))
    train, test = corpus.utterances("train"), corpus.utterances("test")
    assert (len(train), len(test)) == (800, 300)
    assert len({u.speaker for u in train}) == 40 and len({u.speaker for u in test}) == 15
    assert not {u.speaker for u in train} & {u.speaker for u in test}
    labels = json.loads((speechocean762 / "resource" / "scores.json").read_text())
    for utterance in train + test:
        entry = labels[utterance.id]
        assert utterance.text == entry["text"]
        assert utterance.scores.to_json() == {k: v for k, v in entry.items() if k != "text"}
        assert utterance.audio.is_file() and utterance.audio.suffix == ".WAV"
        assert utterance.gender in ("m", "f") and 0 < utterance.age < 100


def test_metadata_comes_from_the_kaldi_files(speechocean762):
    first = Speechocean762(str(speechocean762)).utterances("train")[0]
    assert (first.id, first.speaker, first.gender, first.age) == ("000050003", "0005", "m", 6)
    assert first.words == ("MIKE", "LIKES", "THE", "WHITE", "ONE")


@pytest.fixture
def small_copy(corpus, tmp_path):
    """The first three utterances of each split of the corpus (synthetic, or the real subset), in
    the official layout."""
    root = tmp_path / "so762"
    labels = json.loads((corpus / "resource" / "scores.json").read_text())
    kept = {}
    for split in ("train", "test"):
        (root / split).mkdir(parents=True)
        wav = (corpus / split / "wav.scp").read_text().splitlines()[:3]
        ids = {line.split()[0] for line in wav}
        utt2spk = (corpus / split / "utt2spk").read_text().splitlines()
        speakers = {line.split()[1] for line in utt2spk if line.split()[0] in ids}
        for name in KALDI_FILES:
            lines = (corpus / split / name).read_text().splitlines()
            kept_lines = [line for line in lines if line.split()[0] in ids | speakers]
            (root / split / name).write_text("\n".join(kept_lines) + "\n")
        for line in wav:
            uid, relative = line.split()
            (root / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(corpus / relative, root / relative)
            kept[uid] = labels[uid]
    (root / "resource").mkdir()
    (root / "resource" / "scores.json").write_text(json.dumps(kept))
    return root


def edit_labels(root, change):
    path = root / "resource" / "scores.json"
    labels = json.loads(path.read_text())
    change(labels)
    path.write_text(json.dumps(labels))


def first_wav(root, split="train"):
    uid, relative = (root / split / "wav.scp").read_text().splitlines()[0].split()
    return uid, root / relative


def test_small_copy_reads(small_copy):
    assert [len(Speechocean762(str(small_copy)).utterances(s)) for s in ("train", "test")] == [3, 3]


def break_missing_audio(root):
    uid, wav = first_wav(root)
    wav.unlink()
    return uid, "audio file not found"


def break_unreadable_audio(root):
    uid, wav = first_wav(root)
    wav.write_bytes(b"RIFF....WAVEfmt garbage")
    return uid, "not a readable audio file"


def break_empty_audio(root):
    uid, wav = first_wav(root)
    soundfile.write(wav, np.zeros(0, dtype=np.float32), 16000, format="WAV")
    return uid, "the audio is empty"


def break_non_finite_audio(root):
    uid, wav = first_wav(root)
    samples, rate = soundfile.read(wav, dtype="float32")
    samples[len(samples) // 2] = np.nan  # a float WAV can store it; every adapter weight would follow
    soundfile.write(wav, samples, rate, subtype="FLOAT")
    return uid, "1 of"


def break_labels_without_audio(root):
    edit_labels(root, lambda labels: labels.update(ORPHAN01={**next(iter(labels.values()))}))
    return "ORPHAN01", "has labels in resource/scores.json but no split's wav.scp lists its audio"


def break_audio_without_labels(root):
    uid, _ = first_wav(root)
    edit_labels(root, lambda labels: labels.pop(uid))
    return uid, "listed in train/wav.scp but resource/scores.json has no entry for it"


def break_unequal_phones(root):
    uid, _ = first_wav(root)
    edit_labels(root, lambda labels: labels[uid]["words"][1]["phones-accuracy"].pop())
    left = len(json.loads((root / "resource" / "scores.json").read_text())[uid]["words"][1]["phones-accuracy"])
    return uid, f"phones but {left} 'phones-accuracy' scores"  # 3 in the real subset's first (LIKES)


def break_out_of_range(root):
    uid, _ = first_wav(root)
    edit_labels(root, lambda labels: labels[uid].update(fluency=12))
    return uid, "12 is outside the sentence fluency scale 0-10"


def break_kaldi_line(root):
    path = root / "train" / "wav.scp"
    path.write_text(path.read_text() + "LONELYKEY\n")
    return "wav.scp:4", "expected 'key value'"


def break_truncated_audio(root):
    uid, wav = first_wav(root)
    wav.write_bytes(wav.read_bytes()[: 44 + 200])  # the header still promises the whole recording
    return uid, "truncated: the WAV header promises"


def break_extra_word(root):
    uid, _ = first_wav(root)
    edit_labels(root, lambda labels: labels[uid]["words"].append({**labels[uid]["words"][0], "text": "EXTRA"}))
    return uid, "are not the text"


def break_missing_word(root):
    uid, _ = first_wav(root)
    edit_labels(root, lambda labels: labels[uid]["words"].pop())
    return uid, "are not the text"


def break_other_word(root):
    uid, _ = first_wav(root)
    edit_labels(root, lambda labels: labels[uid]["words"][0].update(text="OTHER"))
    return uid, "['OTHER',"


def break_duplicated_key(root):
    uid, _ = first_wav(root)
    path = root / "resource" / "scores.json"
    path.write_text(path.read_text().replace(f'"{uid}": {{', f'"{uid}": {{"fluency": 1, ', 1))
    return uid, "resource/scores.json: 'fluency' appears more than once"


def break_duplicated_utterance(root):
    uid, _ = first_wav(root)
    path = root / "resource" / "scores.json"
    entry = json.dumps(json.loads(path.read_text())[uid])
    path.write_text(path.read_text().replace("{", f'{{"{uid}": {entry}, ', 1))
    return uid, "has more than one entry in resource/scores.json"


def break_stress(root):
    uid, _ = first_wav(root)
    edit_labels(root, lambda labels: labels[uid]["words"][0].update(stress=7))
    return uid, "'stress': 7 is not a word stress label (the corpus marks only 5 or 10)"


def break_no_speaker(root):
    uid, _ = first_wav(root)
    path = root / "train" / "utt2spk"
    path.write_text("".join(line + "\n" for line in path.read_text().splitlines() if not line.startswith(uid)))
    return uid, "has no speaker: train/utt2spk does not list it"


BREAKAGES = [
    break_missing_audio,
    break_unreadable_audio,
    break_empty_audio,
    break_non_finite_audio,
    break_labels_without_audio,
    break_audio_without_labels,
    break_unequal_phones,
    break_out_of_range,
    break_kaldi_line,
    break_truncated_audio,
    break_extra_word,
    break_missing_word,
    break_other_word,
    break_duplicated_key,
    break_duplicated_utterance,
    break_stress,
    break_no_speaker,
]


@pytest.mark.parametrize("breakage", BREAKAGES, ids=lambda f: f.__name__.removeprefix("break_"))
def test_bad_entry_fails_strict_and_is_counted_otherwise(small_copy, breakage, caplog):
    where, message = breakage(small_copy)
    with pytest.raises(CorpusError, match="1 bad entries") as error:
        Speechocean762(str(small_copy)).utterances("train")
    assert where in str(error.value) and message in str(error.value)
    assert len(error.value.problems) == 1

    with caplog.at_level(logging.WARNING):
        kept = Speechocean762(str(small_copy), strict=False).utterances("train")
    assert len(kept) == (3 if breakage in (break_labels_without_audio, break_kaldi_line) else 2)
    assert "skipped 1 bad entries" in caplog.text and where in caplog.text


def test_missing_split_and_files_are_named(small_copy, tmp_path):
    with pytest.raises(FileNotFoundError, match="no split 'dev'"):
        Speechocean762(str(small_copy)).utterances("dev")
    (small_copy / "test" / "utt2spk").unlink()
    with pytest.raises(FileNotFoundError, match=r"test/utt2spk: missing"):
        Speechocean762(str(small_copy)).utterances("test")
    with pytest.raises(FileNotFoundError, match="nowhere: no such folder"):
        Speechocean762(str(tmp_path / "nowhere")).utterances("train")
    (small_copy / "resource" / "scores.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"scores\.json: missing"):
        Speechocean762(str(small_copy)).utterances("train")


def hub_rows(utterances):
    """The hub dataset's schema: no id column; words as a list of structs with 'phones-accuracy'."""
    rows = []
    for u in utterances:
        entry = u.scores.to_json()
        for word in entry["words"]:
            word["mispronunciations"] = []
        audio = {"bytes": u.audio.read_bytes(), "path": f"{u.id}.wav"}
        rows.append({**entry, "text": u.text, "speaker": u.speaker, "gender": u.gender, "age": u.age, "audio": audio})
    return rows


@pytest.fixture
def hub_copies(small_copy, tmp_path):
    from datasets import Audio, Dataset, DatasetDict

    official = Speechocean762(str(small_copy))
    splits = {s: Dataset.from_list(hub_rows(official.utterances(s))) for s in ("train", "test")}
    data = DatasetDict({s: d.cast_column("audio", Audio(sampling_rate=16000)) for s, d in splits.items()})
    data.save_to_disk(str(tmp_path / "saved"))
    for split, dataset in data.items():
        dataset.to_parquet(str(tmp_path / "parquet" / "data" / f"{split}-00000-of-00001.parquet"))
    return official, [tmp_path / "saved", tmp_path / "parquet"]


@pytest.mark.parametrize("layout", [0, 1], ids=["save_to_disk", "parquet"])
def test_hub_layout_gives_identical_records(hub_copies, layout):
    official, sources = hub_copies
    for split in ("train", "test"):
        expected = official.utterances(split)
        got = Speechocean762Hub(str(sources[layout])).utterances(split)
        assert [dataclasses.replace(u, audio=b"") for u in got] == [dataclasses.replace(u, audio=b"") for u in expected]
        for mine, theirs in zip(got, expected, strict=True):
            assert isinstance(mine.audio, bytes)
            assert np.array_equal(load_audio(mine.audio), load_audio(theirs.audio))


def test_hub_duplicates_are_problems(hub_copies, tmp_path):
    from datasets import concatenate_datasets, load_from_disk

    _, sources = hub_copies
    data = load_from_disk(str(sources[0]))
    doubled = concatenate_datasets([data["train"], data["train"].select([0])])
    doubled.save_to_disk(str(tmp_path / "doubled"))
    with pytest.raises(CorpusError, match="appears 2 times"):
        Speechocean762Hub(str(tmp_path / "doubled")).utterances("train")


@pytest.mark.parametrize("encoding", ["utf-16", "latin-1"])
def test_files_that_are_not_utf8_are_named(small_copy, encoding):
    labels = small_copy / "resource" / "scores.json"
    labels.write_text(labels.read_text().replace('{"', '{"\u00e9', 1), encoding=encoding)  # an accented id
    with pytest.raises(LabelError, match=r"resource/scores\.json: not UTF-8 text .*save it as UTF-8"):
        Speechocean762(str(small_copy)).utterances("train")
    utt2spk = small_copy / "test" / "utt2spk"
    utt2spk.write_text(utt2spk.read_text(), encoding="utf-16")
    with pytest.raises(LabelError, match=r"test/utt2spk: not UTF-8 text"):
        Speechocean762(str(small_copy)).utterances("test")


def test_hub_rows_without_a_speaker_are_problems(hub_copies, tmp_path):
    from datasets import load_from_disk

    _, sources = hub_copies
    train = load_from_disk(str(sources[0]))["train"]
    nobody = train.map(lambda row, i: {"speaker": None if i == 0 else row["speaker"]}, with_indices=True)
    nobody.save_to_disk(str(tmp_path / "nobody"))
    with pytest.raises(CorpusError, match="row 0: no speaker"):
        Speechocean762Hub(str(tmp_path / "nobody")).utterances("train")
