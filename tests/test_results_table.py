"""BENCHMARKS.md's real-speech tables: built from run folders, best run first; and every committed
run's metrics recomputable from its predictions and the references beside them."""

import json

import numpy as np
import pytest
import yaml

from apa.data import Scores, WordScores
from apa.data.records import read_scores
from apa.evaluation import Detection
from apa.evaluation.metrics import evaluate
from apa.evaluation.pairing import Pairs
from apa.evaluation.report import predictions_json, write_json, write_report
from bench.results_table import (
    EVIDENCE,
    RUNS_DIR,
    add_run,
    calibration_table,
    load_runs,
    recipes,
    results_tables,
    within_utterances,
)

SPEED_RUNS = RUNS_DIR.parent / "speed"  # the same recipe before each speed-up (BENCHMARKS.md, Training speed)
COMMITTED = sorted(
    path for runs in (RUNS_DIR, SPEED_RUNS) for path in runs.glob("*") if (path / "metrics.json").is_file()
)


def scores(values: np.ndarray) -> dict[str, Scores]:
    """One one-word utterance per value, every aspect at that value (phones at its 0-2 equivalent)."""
    return {
        f"u{i}": Scores(v, v, v, 10, v, (WordScores("A", v, 10, v, ("AH0",), (v / 5,)),)) for i, v in enumerate(values)
    }


def write_run(folder, predictions: dict[str, Scores], references: dict[str, Scores]) -> None:
    folder.mkdir()
    write_json(folder / "predictions.json", predictions_json(predictions))
    write_json(folder / "references.json", predictions_json(references))
    write_report(folder, evaluate(predictions, references, resamples=50))


@pytest.fixture
def runs(tmp_path):
    rng = np.random.default_rng(0)
    truth = rng.uniform(2, 10, 40).round()
    references = scores(truth)
    for name, noise in (("fa-multi-seed1", 0.5), ("fa-multi-seed2", 1.0), ("ce-multi-seed1", 3.0)):
        write_run(tmp_path / name, scores((truth + rng.normal(0, noise, truth.size)).clip(0, 10)), references)
    (tmp_path / "notes.txt").write_text("not a run")
    return load_runs(tmp_path)


def test_runs_are_ordered_best_first_by_sentence_total(runs):
    assert [run.name for run in runs] == ["fa-multi-seed1", "fa-multi-seed2", "ce-multi-seed1"]
    totals = [run.metrics["metrics"]["sentence/total/pcc"] for run in runs]
    assert totals == sorted(totals, reverse=True)


def test_tables_compare_with_the_best_and_give_the_seed_spread_and_anchors(runs):
    tables = results_tables(runs, resamples=50)
    assert [line for line in tables.splitlines() if line.endswith(" level**")] == [
        "**Phone level**",
        "**Word level**",
        "**Utt level**",
    ]
    lines = tables.splitlines()
    rows = {line.split("|")[1].strip(): line for line in lines if line.startswith("| ") and "seed" in line}
    assert set(rows) >= {"fa-multi-seed1", "fa-multi-seed2", "ce-multi-seed1"}
    assert "PCC minus fa-multi-seed1" in tables and "PCC minus fa-multi-seed2" not in tables
    pccs = [run.metrics["metrics"]["sentence/total/pcc"] for run in runs[:2]]
    *_, spread = (line for line in lines if line.startswith("| fa-multi, 2 seeds | PCC mean ± sd"))  # the Utt table
    assert f"{np.mean(pccs):.3f} ± {np.std(pccs, ddof=1):.3f}" in spread.split("|")[-2]  # the total column
    assert not any(line.startswith("| ce-multi, ") for line in lines)  # one seed: no spread row
    *_, gopt = (line for line in lines if line.startswith("| GOPT"))
    assert gopt.rstrip(" |").endswith("0.742")  # the utterance total's anchor in the total column


def test_a_worse_run_differs_from_the_best_by_its_own_pcc_difference(runs):
    best, worst = runs[0], runs[-1]
    lines = results_tables(runs, resamples=50).splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| ce-multi-seed1 | PCC |"))
    difference_row = next(line for line in lines[start:] if "PCC minus fa-multi-seed1" in line)
    expected = worst.metrics["metrics"]["sentence/total/pcc"] - best.metrics["metrics"]["sentence/total/pcc"]
    assert difference_row.split("|")[-2].strip().startswith(f"{expected:+.3f}")


@pytest.mark.parametrize("run", COMMITTED, ids=[f"{path.parent.name}/{path.name}" for path in COMMITTED])
def test_committed_metrics_are_recomputed_from_their_predictions(run):
    predictions = read_scores(run / "predictions.json", complete=False).scores
    references = read_scores(run / "references.json").scores
    committed = json.loads((run / "metrics.json").read_text())["metrics"]
    threshold = committed.get("phone/accuracy/detection_threshold")  # chosen on the run's dev split, if any
    recomputed = evaluate(predictions, references, resamples=0, detection=Detection(threshold=threshold)).metrics
    assert committed.keys() == recomputed.keys()
    for name, value in committed.items():
        assert value == pytest.approx(recomputed[name], abs=1e-9), name


@pytest.mark.parametrize("run", COMMITTED, ids=[f"{path.parent.name}/{path.name}" for path in COMMITTED])
def test_committed_runs_were_scored_against_the_subsets_test_labels(run, speechocean762):
    from apa.data import Speechocean762

    subset = {u.id: u.scores for u in Speechocean762(str(speechocean762)).utterances("test")}
    assert read_scores(run / "references.json").scores == subset


def finished_run(folder, objective: str, prompt: str, seed: int):
    """A train.py run folder as Hydra leaves it: the evaluation, config.yaml and .hydra/."""
    rng = np.random.default_rng(seed)
    truth = rng.uniform(2, 10, 20).round()
    write_run(folder, scores((truth + rng.normal(0, 1, truth.size)).clip(0, 10)), scores(truth))
    (folder / "config.yaml").write_text(f"seed: {seed}\n")
    (folder / "train.log").write_text("training\n")
    (folder / ".hydra").mkdir()
    choices = {"hydra": {"job": {"name": "train"}, "runtime": {"choices": {"objective": objective, "prompt": prompt}}}}
    (folder / ".hydra" / "hydra.yaml").write_text(json.dumps(choices))
    overrides = ["experiment=mini_speechocean762", f"prompt={prompt}", f"objective={objective}", f"seed={seed}"]
    (folder / ".hydra" / "overrides.yaml").write_text(json.dumps(overrides))
    (folder / "adapter").mkdir()
    return folder


def test_an_added_run_is_named_by_its_choices_and_its_table_row_gives_its_command(tmp_path):
    runs_dir = tmp_path / "real_data"
    added = add_run(finished_run(tmp_path / "2026-12-01_10-00-00", "regression", "multi", 7), runs_dir)
    assert added == runs_dir / "regression-multi-seed7"
    assert sorted(p.name for p in added.iterdir()) == sorted([*EVIDENCE, "overrides.yaml"])  # no adapter
    tables = results_tables(load_runs(runs_dir), resamples=20)
    command = "python train.py experiment=mini_speechocean762 prompt=multi objective=regression seed=7"
    assert f"| regression-multi-seed7 | `{command}` |" in tables.splitlines()
    with pytest.raises(FileExistsError, match="regression-multi-seed7 exists"):
        add_run(tmp_path / "2026-12-01_10-00-00", runs_dir)


def test_a_run_with_a_variant_is_its_own_recipe_beside_the_plain_one(tmp_path):
    runs_dir = tmp_path / "real_data"
    add_run(finished_run(tmp_path / "plain", "fa", "sentence", 42), runs_dir)
    added = add_run(finished_run(tmp_path / "longer", "fa", "sentence", 42), runs_dir, variant="epochs5")
    assert added == runs_dir / "fa-sentence-epochs5-seed42"
    assert sorted(recipes(load_runs(runs_dir))) == ["fa-sentence", "fa-sentence-epochs5"]


def test_a_run_decoded_again_by_evaluate_is_named_after_its_training_run(tmp_path):
    trained = finished_run(tmp_path / "train-run", "ce", "multi", 42)
    folder = tmp_path / "evaluate-run"
    (training_run,) = load_runs(tmp_path)
    write_run(folder, training_run.predictions, training_run.references)
    (folder / "evaluate.log").write_text("decoding\n")
    (folder / ".hydra").mkdir()
    hydra = {"hydra": {"job": {"name": "evaluate"}, "runtime": {"choices": {"decoding": "slots"}}}}
    (folder / ".hydra" / "hydra.yaml").write_text(json.dumps(hydra))
    decoding = {"_target_": "apa.evaluation.SlotDecoder", "batch_size": 8, "readout": "soft"}
    (folder / ".hydra" / "config.yaml").write_text(json.dumps({"checkpoint": str(trained), "decoding": decoding}))
    overrides = [f"checkpoint={trained}", "decoding=slots", "decoding.readout=soft"]
    (folder / ".hydra" / "overrides.yaml").write_text(json.dumps(overrides))
    added = add_run(folder, tmp_path / "real_data")
    assert added.name == "ce-multi-seed42-slots_soft"
    assert yaml.safe_load((added / "config.yaml").read_text()) == {"seed": 42, "decoding": decoding}
    assert sorted(p.name for p in added.iterdir()) == sorted(
        [*EVIDENCE[1:-1], "evaluate.log", "config.yaml", "overrides.yaml"]
    )
    command = "python evaluate.py checkpoint=<ce-multi-seed42's run> decoding=slots decoding.readout=soft"
    assert f"| ce-multi-seed42-slots_soft | `{command}` |" in results_tables(load_runs(tmp_path / "real_data"), 20)


def test_adding_an_unfinished_run_names_what_it_lacks(tmp_path):
    folder = finished_run(tmp_path / "run", "fa", "multi", 1)
    (folder / "metrics.json").unlink()
    (folder / ".hydra" / "overrides.yaml").unlink()
    with pytest.raises(FileNotFoundError, match=r"no metrics.json, .hydra/overrides.yaml;"):
        add_run(folder, tmp_path / "real_data")
    assert not (tmp_path / "real_data").exists()


def test_the_calibration_table_gives_each_bands_mean_prediction_under_the_references(tmp_path):
    truth = np.array([2.0, 4.0, 5.0, 6.0, 7.5, 8.0, 8.5, 9.0, 10.0, 10.0])
    compressed = 7 + 0.5 * (truth - 7)  # a scorer that halves the spread around 7
    write_run(tmp_path / "compressed-multi-seed1", scores(compressed), scores(truth))
    (run,) = load_runs(tmp_path)
    lines = calibration_table([run], bands=(0, 5, 8, 10))
    assert lines[2] == "| run | 0-5 (n=2) | 5-8 (n=3) | 8-10 (n=5) |"  # 5 and 8 open their band, 10 closes the last
    assert lines[4] == "| references | 3.00 | 6.17 | 9.10 |"
    assert lines[5] == "| compressed-multi-seed1 | 5.00 | 6.58 | 8.05 |"


def test_within_utterances_tells_a_located_score_from_a_repeated_utterance_level():
    reference = [2.0, 6.0, 10.0, 3.0, 4.0, 5.0]  # utterance means 6 and 4; 34 of the 40 squared deviations within
    utterance = [0, 0, 0, 1, 1, 1]
    level = [6.0, 6.0, 6.0, 4.0, 4.0, 4.0]  # each utterance's mean reference, repeated for its words
    assert within_utterances(Pairs(level, reference, utterance)) == (None, 0.0, pytest.approx(34 / 40))
    located = [2.0, 6.0, 10.0, 0.0, 1.0, 2.0]  # right within each utterance, the second one 3 too low
    assert within_utterances(Pairs(located, reference, utterance)) == (
        pytest.approx(1.0),
        pytest.approx(34 / 71.5),
        pytest.approx(34 / 40),
    )
    assert within_utterances(Pairs([1.0, 2.0], [1.0, 3.0], [0, 0])) == (None, None, None)  # too few pairs
