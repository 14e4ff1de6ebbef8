"""Comparing run folders offline: a table with intervals and paired-bootstrap differences."""

import json

import pytest
import yaml

from apa.evaluation.comparison import comparison_table, load_run, main, run_folders
from apa.training.selection import dev_history

from .helpers import launch


def test_table_of_runs_and_their_differences(scored_runs):
    runs = [load_run(folder) for folder in scored_runs]
    assert [r.name for r in runs] == ["FairAverage sentence (close)", "FairAverage sentence (noisy)"]
    table = comparison_table(runs, "pcc", resamples=200)
    lines = table.splitlines()
    assert lines[2] == "| run | Utt Acc | Utt Flu | Utt Pro | Utt Tot |"
    close, noisy = lines[4], lines[5]
    assert close.startswith("| FairAverage sentence (close) | 0.") and "[" in close
    assert noisy.startswith("| FairAverage sentence (noisy) | 0.")
    difference = next(line for line in lines if line.startswith("| FairAverage sentence (noisy)") and "p=" in line)
    assert difference.count("(p=0.0") == 4  # the noisy system is worse on every aspect, clearly
    assert all(cell.strip().startswith("-") for cell in difference.split("|")[2:-1])


def test_runs_on_different_test_sets_are_refused(scored_runs):
    runs = [load_run(folder) for folder in scored_runs]
    runs[1].references.popitem()
    with pytest.raises(ValueError, match="different references"):
        comparison_table(runs)


def test_command_line(scored_runs, tmp_path):
    output = tmp_path / "table.md"
    result = launch(
        "-m",
        "apa.compare",
        *map(str, scored_runs),
        "--resamples",
        "50",
        f"--output={output}",
        outputs=tmp_path / "outputs",
    )
    assert result.returncode == 0, result.stderr
    assert (
        "PCC with 95% bootstrap intervals" in result.stdout and output.read_text() == result.stdout.rstrip("\n") + "\n"
    )
    missing = launch("-m", "apa.compare", str(tmp_path), outputs=tmp_path / "outputs")
    assert missing.returncode != 0 and "no metrics.json" in missing.stderr


def compare_fails(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as caught:
        main(argv)
    return str(caught.value.code) + capsys.readouterr().err


def test_what_cannot_be_compared_is_a_clear_error_not_a_traceback(scored_runs, tmp_path, capsys):
    close, noisy = map(str, scored_runs)
    assert "apa compare: error:" in compare_fails([str(tmp_path)], capsys)  # not a run folder
    assert "no metrics.json" in compare_fails([str(tmp_path)], capsys)
    references = scored_runs[1] / "references.json"
    fewer = json.loads(references.read_text())
    fewer.pop(next(iter(fewer)))
    references.write_text(json.dumps(fewer))
    assert "scored against different references" in compare_fails([close, noisy], capsys)
    references.write_text(references.read_text().replace('"accuracy": ', '"accuracy": 0.5 + ', 1))  # not JSON
    assert "references.json: not valid JSON" in compare_fails([close, noisy], capsys)
    for bad in ("0", "-5", "x"):
        assert "expected a whole number of at least 1" in compare_fails([close, "--resamples", bad], capsys)
    (scored_runs[0] / "metrics.json").write_text("[1, 2]")
    assert "not a metrics file apa wrote" in compare_fails([close], capsys)


def test_a_run_whose_config_names_no_objective_is_named_after_its_folder(scored_runs):
    (scored_runs[0] / "config.yaml").write_text(yaml.safe_dump({"objective": None, "prompt": {"name": "multi"}}))
    assert load_run(scored_runs[0]).name == "multi (close)"
    (scored_runs[0] / "config.yaml").write_text("just text\n")
    assert load_run(scored_runs[0]).name == "close"


def test_a_folder_of_runs_is_every_run_below_it(scored_runs, tmp_path):
    """A sweep's or outputs' folder holds runs at any depth; a run's untrained/ baseline is not one of them."""
    parent = scored_runs[0].parent
    baseline = scored_runs[0] / "untrained"
    baseline.mkdir()
    for name in ("metrics.json", "predictions.json"):
        (baseline / name).write_text((scored_runs[0] / name).read_text())
    assert run_folders(parent) == sorted(scored_runs)
    assert run_folders(scored_runs[1]) == [scored_runs[1]]
    with pytest.raises(FileNotFoundError, match="no run in it"):
        run_folders(tmp_path / "empty")


def test_the_dev_history_keeps_every_dev_evaluation_and_the_step_kept():
    log_history = [
        {"loss": 1.0, "step": 1},
        {"eval_dev/selection": 0.2, "eval_dev/sentence/total/pcc": 0.2, "step": 2, "epoch": 0.5},
        {"eval_dev/selection": float("nan"), "step": 4, "epoch": 1.0},
    ]
    history = dev_history(log_history, kept_step=2, selected_by="dev/selection")
    assert history == {
        "kept_step": 2,
        "selected_by": "dev/selection",
        "evaluations": [
            {"step": 2, "epoch": 0.5, "dev/selection": 0.2, "dev/sentence/total/pcc": 0.2},
            {"step": 4, "epoch": 1.0, "dev/selection": None},  # undefined: null, as metrics.json writes it
        ],
    }
