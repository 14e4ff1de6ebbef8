"""Metrics against scipy, the edge cases, pairing of words and phones, and the bootstraps."""

import json
import math

import numpy as np
import pytest
from scipy import stats

from apa.data.records import LabelError, Scores, WordScores, read_scores
from apa.data.scales import ASPECTS
from apa.evaluation.metrics import compute, evaluate, paired_bootstrap, sentence_answers
from apa.evaluation.pairing import align, pair_scores
from apa.evaluation.report import markdown_table


@pytest.mark.parametrize("seed", range(5))
def test_correlations_and_rmse_match_scipy(seed):
    rng = np.random.default_rng(seed)
    reference = rng.integers(0, 11, 200).astype(float)
    predicted = np.clip(reference + rng.normal(0, 2, 200), 0, 10)
    values, reasons = compute(predicted, reference, "word")
    assert values["pcc"] == pytest.approx(stats.pearsonr(predicted, reference).statistic)
    assert values["scc"] == pytest.approx(stats.spearmanr(predicted, reference).statistic)
    assert values["rmse"] == pytest.approx(math.sqrt(np.mean((predicted - reference) ** 2)))
    assert values["n"] == 200 and reasons == {} and "within1" not in values
    # and against the definitions, not only the scipy calls compute makes
    deviations = predicted - predicted.mean(), reference - reference.mean()
    pcc = (deviations[0] @ deviations[1]) / math.sqrt((deviations[0] ** 2).sum() * (deviations[1] ** 2).sum())
    assert values["pcc"] == pytest.approx(pcc)
    assert values["scc"] == pytest.approx(np.corrcoef(stats.rankdata(predicted), stats.rankdata(reference))[0, 1])


def test_correlations_and_rmse_of_a_worked_example():
    """Deviations -2 -1 0 1 2 and -1 -2 1 0 2: covariance sum 8, squared sums 10 and 10, PCC 0.8;
    the values are their own ranks, so SCC 0.8 too; errors -1 1 -1 1 0, RMSE sqrt(4/5). With a tie
    (ranks 1.5 1.5 3 4 against 1 2 3 4): covariance sum 4.5, squared sums 4.5 and 5, SCC 3/sqrt(10)."""
    values, _ = compute(np.array([1.0, 2, 3, 4, 5]), np.array([2.0, 1, 4, 3, 5]), "word")
    assert (values["pcc"], values["scc"], values["rmse"]) == pytest.approx((0.8, 0.8, math.sqrt(0.8)))
    tied, _ = compute(np.array([1.0, 1, 2, 3]), np.array([1.0, 2, 3, 4]), "word")
    assert tied["scc"] == pytest.approx(3 / math.sqrt(10))
    assert tied["pcc"] == pytest.approx(np.corrcoef([1.0, 1, 2, 3], [1.0, 2, 3, 4])[0, 1])


def test_tolerance_rates_for_sentences():
    """Errors 0.4, -0.5, 1.0, 2.0, 2.5: exact (< 0.5) 1/5, within1 (<= 1) 3/5, within2 (<= 2) 4/5."""
    reference = np.array([5.0, 5.0, 5.0, 5.0, 5.0])
    values, _ = compute(reference + np.array([0.4, -0.5, 1.0, 2.0, 2.5]), reference, "sentence")
    assert (values["exact"], values["within1"], values["within2"]) == pytest.approx((0.2, 0.6, 0.8))


def test_parikh_match_correlations_and_band_means():
    """References 2, 4, 6, 8, 10 and predictions 4, 7, 7, 8, 9 (errors 2, 3, 1, 0, -1).
    Within-1 indicator 0, 0, 1, 1, 1: deviations from the means (6; 0.6) give covariance sum 6,
    squared sums 40 and 1.2, PCC 6 / sqrt(48) = sqrt(3)/2. Within-2 indicator 1, 0, 1, 1, 1:
    covariance sum 2, squared sums 40 and 0.8, PCC 2 / sqrt(32) = 1 / (2 sqrt(2)). Mean prediction
    for references below 7: (4 + 7 + 7) / 3 = 6; from 7 up: (8 + 9) / 2 = 8.5."""
    values, reasons = compute(np.array([4.0, 7, 7, 8, 9]), np.array([2.0, 4, 6, 8, 10]), "sentence")
    assert values["within1_pcc"] == pytest.approx(math.sqrt(3) / 2)
    assert values["within2_pcc"] == pytest.approx(1 / (2 * math.sqrt(2)))
    assert (values["mean_ref_below7"], values["mean_ref_from7"]) == (6.0, 8.5)
    assert reasons == {}
    always_close, reasons = compute(np.array([7.0, 8, 9]), np.array([7.0, 8, 9]), "sentence")
    assert always_close["within1_pcc"] is None and reasons["within1_pcc"] == "every prediction within 1"
    assert always_close["mean_ref_below7"] is None and reasons["mean_ref_below7"] == "no reference below 7"
    assert "within1_pcc" not in compute(np.array([7.0, 8, 9]), np.array([7.0, 8, 9]), "word")[0]


@pytest.mark.parametrize(
    ("predicted", "reference", "reason"),
    [
        ([1.0, 2.0, 3.0], [10.0, 10.0, 10.0], "constant references (all 10)"),
        ([7.0, 7.0, 7.0], [1.0, 2.0, 3.0], "constant predictions (all 7)"),
        ([1.0, 2.0], [2.0, 1.0], "fewer than 3 pairs (2)"),
    ],
)
def test_undefined_correlations_are_null_with_a_reason(predicted, reference, reason):
    values, reasons = compute(np.array(predicted), np.array(reference), "word")  # no sentence-only analyses
    assert values["pcc"] is None and values["scc"] is None
    assert reasons == {"pcc": reason, "scc": reason}
    assert values["rmse"] is not None


def test_spreads_of_predictions_and_references():
    """Predictions 7, 7, 7.2, 6.8 (mean 7): variance (0 + 0 + 0.04 + 0.04) / 4 = 0.02, sd 0.1414.
    References 5, 9, 6, 8 (mean 7): variance (4 + 4 + 1 + 1) / 4 = 2.5, sd 1.5811. The PCC of such a
    near-constant system can still be high, which is why the spreads are reported beside it."""
    values, _ = compute(np.array([7.0, 7.0, 7.2, 6.8]), np.array([5.0, 9.0, 6.0, 8.0]), "sentence")
    assert values["sd"] == pytest.approx(math.sqrt(0.02))
    assert values["sd_reference"] == pytest.approx(math.sqrt(2.5))


def test_nothing_predicted():
    values, reasons = compute(np.array([]), np.array([]), "phone")
    assert values == {"n": 0, "pcc": None, "scc": None, "rmse": None, "sd": None, "sd_reference": None}
    assert set(reasons.values()) == {"no predictions"}


def scores(acc, words=()):
    return Scores(accuracy=acc, fluency=acc, prosodic=acc, completeness=10, total=acc, words=tuple(words))


def word(text, acc, phones=(), phone_scores=()):
    return WordScores(text, acc, 10, acc, tuple(phones), tuple(phone_scores))


def test_missing_utterances_are_counted_listed_and_excluded():
    references = {f"u{i}": scores(i % 10) for i in range(6)}
    predictions = {f"u{i}": scores(i % 10) for i in range(4)}
    report = evaluate(predictions, references, resamples=0)
    assert report.coverage["sentence/accuracy"] == {"predicted": 4, "references": 6, "rate": pytest.approx(4 / 6)}
    assert report.missing["sentence/accuracy"] == ["u4", "u5"]
    assert report.metrics["sentence/accuracy/pcc"] == pytest.approx(1.0)
    assert report.metrics["sentence/completeness/pcc"] is None  # every reference is 10
    assert "constant references" in report.undefined["sentence/completeness/pcc"]
    assert "word/accuracy/n" not in report.metrics  # not predicted: not scored


def test_words_pair_by_position_or_by_text():
    reference = {"u": scores(5, [word("A", 1), word("CAT", 2), word("SAT", 3)])}
    same = {"u": scores(5, [word("A", 4), word("CAT", 5), word("SAT", 6)])}
    assert pair_scores(same, reference)["word", "accuracy"].predicted == [4, 5, 6]
    # a word left out and one added: aligned by text; the unmatched reference word is missing
    shifted = {"u": scores(5, [word("CAT", 5), word("THE", 9), word("SAT", 6)])}
    pairs = pair_scores(shifted, reference)["word", "accuracy"]
    assert list(zip(pairs.predicted, pairs.reference, strict=True)) == [(5, 2), (6, 3)]
    assert pairs.missing == ["u word 0 (A)"]
    assert align(["", ""], ["X", "Y"]) == [(0, 0), (1, 1)]  # positions only, when texts are unknown
    assert align(["", ""], ["X", "Y", "Z"]) == []  # ... and only when the counts agree (a phone group merged)


def test_phones_pair_within_words():
    reference = {"u": scores(5, [word("CAT", 8, ["K", "AE1", "T"], [2.0, 1.0, 0.0])])}
    prediction = {"u": scores(5, [word("cat", 8, ["K", "T"], [1.8, 0.2])])}  # a phone left out, lower case
    pairs = pair_scores(prediction, reference)["phone", "accuracy"]
    assert list(zip(pairs.predicted, pairs.reference, strict=True)) == [(1.8, 2.0), (0.2, 0.0)]
    assert pairs.missing == ["u word 0 (CAT) phone 1 (AE1)"]


def test_non_finite_predictions_are_rejected_with_their_place(tmp_path):
    path = tmp_path / "predictions.json"
    path.write_text('{"u1": {"accuracy": 7}, "u2": {"accuracy": NaN}}')
    with pytest.raises(LabelError, match=r"predictions\.json u2 'accuracy': expected a number, got nan"):
        read_scores(path, complete=False)
    path.write_text('{"u1": {"words": [{"text": "A", "accuracy": Infinity}]}}')
    with pytest.raises(LabelError, match="got inf"):
        read_scores(path, complete=False)
    path.write_text("[1, 2]")
    with pytest.raises(LabelError, match="expected an object keyed by utterance id"):
        read_scores(path, complete=False)
    path.write_text('{"u1": {"accuracy": 7}}', encoding="utf-16")
    with pytest.raises(LabelError, match=r"predictions\.json: not UTF-8 text"):
        read_scores(path, complete=False)


def test_bootstrap_interval_brackets_the_estimate_and_narrows_with_n():
    rng = np.random.default_rng(0)

    def widths(n):
        refs = {f"u{i}": scores(int(v)) for i, v in enumerate(rng.integers(0, 11, n))}
        preds = {u: scores(min(10, max(0, s.accuracy + rng.integers(-2, 3)))) for u, s in refs.items()}
        report = evaluate(preds, refs, resamples=300, seed=1)
        low, high = report.ci95["sentence/accuracy/pcc"]
        assert low <= report.metrics["sentence/accuracy/pcc"] <= high
        return high - low

    assert widths(400) < widths(40)


def test_paired_bootstrap():
    rng = np.random.default_rng(3)
    references = {f"u{i}": scores(int(v)) for i, v in enumerate(rng.integers(0, 11, 150))}
    good = {u: scores(float(np.clip(s.accuracy + rng.normal(0, 1), 0, 10))) for u, s in references.items()}
    bad = {u: scores(float(np.clip(s.accuracy + rng.normal(0, 4), 0, 10))) for u, s in references.items()}
    better = paired_bootstrap(good, bad, references, resamples=300)["sentence/accuracy/pcc"]
    assert better["difference"] > 0.2 and better["p_value"] < 0.01 and better["ci95"][0] > 0
    same = paired_bootstrap(good, good, references, resamples=100)["sentence/accuracy/pcc"]
    assert same["difference"] == 0 and same["p_value"] == 1.0


def test_report_json_has_no_nan_and_a_papers_table():
    references = {f"u{i}": scores(i % 10, [word("A", i % 10, ["AH0"], [2.0])]) for i in range(10)}
    report = evaluate(references, references, resamples=50)
    text = json.dumps(report.to_json(), allow_nan=False)  # raises on NaN
    assert '"sentence/completeness/pcc": null' in text
    table = markdown_table(report)
    assert (
        table.splitlines()[0]
        == "| metric | Phone Acc | Word Acc | Word Str | Word Tot | Utt Acc | Utt Flu | Utt Pro | Utt Com | Utt Tot |"
    )
    assert "| PCC | - | 1.000" in table  # phones all 2.0: undefined, shown as -
    assert (
        "- `sentence/completeness` pcc, scc, within1_pcc, within2_pcc undefined: constant references (all 10)" in table
    )
    assert "- `sentence/completeness` mean_ref_below7 undefined: no reference below 7" in table
    assert "| within2_pcc | " in table and "| mean_ref_from7 | " in table


def test_predictions_without_a_reference_are_listed():
    references = {f"u{i}": scores(i) for i in range(4)}
    predictions = {**references, "stray": scores(3), "also-stray": scores(4)}
    report = evaluate(predictions, references, resamples=0)
    assert report.ignored == {"predictions without a reference": ["also-stray", "stray"]}
    assert report.to_json()["ignored"] == report.ignored
    assert report.metrics["sentence/accuracy/n"] == 4


def test_empty_predictions_score_zero_coverage_not_an_empty_table():
    references = {f"u{i}": scores(i, [word("A", i, ["AH0"], [2.0])]) for i in range(4)}
    for nothing in ({}, {"u0": Scores()}):
        report = evaluate(nothing, references, resamples=0)
        assert set(report.coverage) == {f"sentence/{a}" for a in ASPECTS["sentence"]} | {
            "word/accuracy",
            "word/stress",
            "word/total",
            "phone/accuracy",
        }
        assert all(c["predicted"] == 0 and c["rate"] == 0.0 for c in report.coverage.values())
        assert report.metrics["sentence/total/pcc"] is None and report.metrics["sentence/total/n"] == 0
        assert "| coverage | 0.000" in markdown_table(report)


def test_a_bootstrap_over_one_utterance_gives_no_interval():
    """Ten words of one utterance: PCC is defined, but resampling one utterance varies nothing."""
    words = [word(f"W{i}", i) for i in range(10)]
    reference = {"u": scores(5, words)}
    prediction = {"u": scores(5, [word(w.text, min(10, w.accuracy + (i % 3))) for i, w in enumerate(words)])}
    report = evaluate(prediction, reference, resamples=50)
    assert report.metrics["word/accuracy/pcc"] is not None
    assert report.ci95["word/accuracy/pcc"] is None and report.ci95["word/accuracy/rmse"] is None
    difference = paired_bootstrap(prediction, reference, reference, resamples=50)["word/accuracy/rmse"]
    assert difference["difference"] > 0 and difference["ci95"] is None and difference["p_value"] is None
    two = evaluate({**prediction, "v": prediction["u"]}, {**reference, "v": reference["u"]}, resamples=50)
    assert two.ci95["word/accuracy/rmse"] is not None  # two utterances can be resampled


def test_reading_predictions_lists_duplicated_and_unknown_keys(tmp_path):
    path = tmp_path / "predictions.json"
    path.write_text(
        '{"u1": {"accuracy": 7, "acuracy": 8, "total": 6, "total": 9, "words": [{"text": "A", "strss": 5}]},'
        ' "u2": {"accuracy": 5}, "u2": {"accuracy": 6}}'
    )
    file = read_scores(path, complete=False)
    assert file.scores == {"u1": Scores(accuracy=7, words=(WordScores("A"),))}  # neither total, no u2: unknown
    assert file.ignored == {
        "duplicated keys": [f"{path}: 'u2' appears more than once", f"{path} u1: 'total' appears more than once"],
        "unknown keys": [
            f"{path} u1: unknown key 'acuracy' (did you mean 'accuracy'?)",
            f"{path} u1 words[0]: unknown key 'strss' (did you mean 'stress'?)",
        ],
    }
    labels = tmp_path / "references.json"
    labels.write_text('{"u1": {"accuracy": 7, "accuracy": 7}}')
    with pytest.raises(LabelError, match=r"1 duplicated keys in labels:\n  .*references\.json u1: 'accuracy'"):
        read_scores(labels)


def test_the_evaluator_reports_what_it_ignores(tmp_path, caplog):
    from apa.evaluation import EvaluateJob, run
    from apa.tracking import WandbLogger

    references = {f"u{i}": scores(i, [word("A", i, ["AH0"], [2.0])]) for i in range(5)}
    (tmp_path / "references.json").write_text(json.dumps({u: s.to_json() for u, s in references.items()}))
    predictions = {u: s.to_json() for u, s in references.items()} | {"stray": {"accuracy": 1}}
    text = json.dumps(predictions).replace('"u1": {"accuracy": 1', '"u1": {"acuracy": 3, "accuracy": 1, "fluency": 2')
    (tmp_path / "predictions.json").write_text(text)
    job = EvaluateJob(
        output_dir=tmp_path / "out",
        logger=WandbLogger(mode="disabled"),
        cache_dir=tmp_path / "cache",
        references=tmp_path / "references.json",
        predictions=tmp_path / "predictions.json",
        resamples=0,
    )
    with caplog.at_level("WARNING", logger="apa.evaluation.run"):
        run(job)
    ignored = json.loads((tmp_path / "out" / "metrics.json").read_text())["ignored"]
    assert ignored == {
        "duplicated keys": [f"{tmp_path / 'predictions.json'} u1: 'fluency' appears more than once"],
        "unknown keys": [f"{tmp_path / 'predictions.json'} u1: unknown key 'acuracy' (did you mean 'accuracy'?)"],
        "predictions without a reference": ["stray"],
    }
    for line in ("ignored 1 duplicated keys", "ignored 1 unknown keys", "ignored 1 predictions without a reference"):
        assert line in caplog.text


def test_alike_sentence_answers_are_counted_exactly_and_rounded():
    """Three utterances answer 8.0/8.0, one 8.2/7.9 (the same once rounded), one 5/6: to one decimal
    three distinct answers, the most common for 3 of 5; rounded, two, the most common for 4 of 5.
    An utterance missing a sentence score is not an answer."""
    answers = [(8.0, 8.0)] * 3 + [(8.2, 7.9), (5.0, 6.0)]
    predictions = {f"u{i}": Scores(accuracy=a, total=t) for i, (a, t) in enumerate(answers)}
    predictions["partial"] = Scores(accuracy=8.0)
    found = sentence_answers(predictions, ["accuracy", "total"])
    assert found["n"] == 5 and found["aspects"] == ["accuracy", "total"]
    assert found["exact"] == {"most_common": [8.0, 8.0], "share": 0.6, "distinct": 3}
    assert found["rounded"] == {"most_common": [8.0, 8.0], "share": 0.8, "distinct": 2}
    assert sentence_answers({}, ["accuracy"]) == {}
    report = evaluate(predictions, {uid: Scores(accuracy=7.0, total=7.0) for uid in predictions}, resamples=0)
    assert report.answers["n"] == 5 and "the most common (8 8) for 80.0%" in markdown_table(report)
