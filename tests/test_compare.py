"""Comparing run folders offline: a table with intervals and paired-bootstrap differences."""

import pytest

from apa.evaluation.comparison import comparison_table, load_run

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
