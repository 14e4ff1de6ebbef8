"""Score scales and the scores.json schema: native scales kept, bad labels named."""

import json

import pytest

from apa.data.records import LabelError, Scores, read_scores
from apa.data.scales import SCALES, scale_of


def test_scales_map_phones_to_ten_classes():
    phone = scale_of("phone", "accuracy")
    assert phone.to_score(1.6) == pytest.approx(8.0)
    assert phone.to_native(8) == pytest.approx(1.6)
    assert [phone.nearest_class(x) for x in (0, 0.2, 1.0, 1.8, 2.0)] == [0, 1, 5, 9, 10]
    assert phone.nearest_class(1.5) == 7  # 7.5 is a tie: the lower class


def test_stress_has_two_classes():
    stress = scale_of("word", "stress")
    assert stress.classes == (5, 10)
    assert [stress.nearest_class(x) for x in (0, 5, 7, 8, 10)] == [5, 5, 5, 10, 10]


def test_every_scale_is_within_zero_to_ten():
    for (granularity, aspect), scale in SCALES.items():
        assert min(scale.classes) >= 0 and max(scale.classes) == 10, (granularity, aspect)


def test_unknown_scale_is_named():
    with pytest.raises(KeyError, match="word/fluency"):
        scale_of("word", "fluency")


def test_corpus_labels_round_trip(corpus):
    """Every label file entry of the corpus (synthetic, and the real subset's) reads and writes back."""
    labels = json.loads((corpus / "resource" / "scores.json").read_text())
    for uid, entry in labels.items():
        expected = {key: value for key, value in entry.items() if key != "text"}
        assert Scores.from_json(entry, uid).to_json() == expected


ENTRY = {
    "accuracy": 8,
    "completeness": 10,
    "fluency": 7,
    "prosodic": 7,
    "total": 7,
    "text": "GOOD JOB",
    "words": [
        {"text": "GOOD", "accuracy": 10, "stress": 10, "total": 10, "phones": ["G", "UH0", "D"]},
        {"text": "JOB", "accuracy": 9, "stress": 10, "total": 9, "phones": ["JH", "AA0", "B"]},
    ],
}
ENTRY["words"][0]["phones-accuracy"] = [2, 1.6, 2]
ENTRY["words"][1]["phones-accuracy"] = [2, 2, 1]


def broken(change):
    entry = json.loads(json.dumps(ENTRY))
    change(entry)
    return entry


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda e: e.pop("fluency"), r"utt: missing score 'fluency'"),
        (lambda e: e.update(total=11), r"utt 'total': 11 is outside the sentence total scale 0-10"),
        (lambda e: e.update(accuracy="8"), r"utt 'accuracy': expected a number, got '8'"),
        (lambda e: e.update(accuracy=True), r"expected a number, got True"),
        (lambda e: e.update(accuracy=float("nan")), r"expected a number, got nan"),
        (lambda e: e["words"][1].update(stress=-5), r"word 1 \('JOB'\) 'stress': -5 is outside"),
        (lambda e: e["words"][0]["phones-accuracy"].append(2), r"word 0 \('GOOD'\): 3 phones but 4"),
        (lambda e: e["words"][0]["phones-accuracy"].__setitem__(1, 2.4), r"phone 1 \(UH0\): 2.4 is outside"),
        (lambda e: e["words"][0].pop("phones"), r"'phones' must be a list"),
        (lambda e: e.update(words="GOOD JOB"), r"'words' must be a list"),
        (lambda e: e["words"][0].update(stress=7), r"'stress': 7 is not a word stress label .*only 5 or 10"),
    ],
    ids=[
        "missing",
        "range",
        "string",
        "bool",
        "nan",
        "stress",
        "lengths",
        "phone-range",
        "no-phones",
        "words",
        "stress-between",
    ],
)
def test_bad_labels_are_named(change, message):
    with pytest.raises(LabelError, match=message):
        Scores.from_json(broken(change), "utt")


def test_predictions_may_leave_scores_out():
    prediction = Scores.from_json({"accuracy": 7, "words": [{"text": "GOOD", "phones": ["G"]}]}, "p", complete=False)
    assert prediction.accuracy == 7 and prediction.fluency is None
    soft = Scores.from_json({"words": [{"text": "GOOD", "stress": 7.5}]}, "p", complete=False)
    assert soft.words[0].stress == 7.5  # a prediction may fall between the two stress labels
    assert prediction.words[0].phones_accuracy == (None,)
    assert prediction.to_json() == {"accuracy": 7, "words": [{"text": "GOOD", "phones": ["G"]}]}


def test_value_and_with_value_address_every_granularity():
    scores = Scores.from_json(ENTRY, "utt")
    assert scores.value("sentence", "fluency") == 7
    assert scores.value("word", "accuracy", word=1) == 9
    assert scores.value("phone", "accuracy", word=0, phone=1) == 1.6
    changed = scores.with_value("phone", "accuracy", 0.4, word=1, phone=2)
    assert changed.value("phone", "accuracy", word=1, phone=2) == 0.4
    assert scores.value("phone", "accuracy", word=1, phone=2) == 1  # records are immutable


@pytest.mark.parametrize("depth", [17, 1000, 100_000])
def test_a_scores_file_nested_without_end_is_refused(tmp_path, depth):
    path = tmp_path / "predictions.json"
    path.write_text('{"utt": ' + "[" * depth + "]" * depth + "}")
    with pytest.raises(LabelError, match="nested over 16 levels deep"):
        read_scores(path, complete=False)
