"""Notebooks are committed without outputs and run, top to bottom, on fixture data and runs."""

import os

import nbformat
import pytest
from nbclient import NotebookClient

from .helpers import PROJECT_ROOT

NOTEBOOKS = sorted((PROJECT_ROOT / "notebooks").glob("*.ipynb"))


def test_the_notebooks_exist():
    assert [n.name for n in NOTEBOOKS] == ["01_data.ipynb", "02_compare_runs.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_without_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: strip the outputs"


def executed(path, monkeypatch, **environment) -> list:
    """The notebook's outputs, run top to bottom with ``environment`` (no error in any cell)."""
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("APA_NOTEBOOK_RESAMPLES", "20")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"], [o for o in outputs if o.output_type == "error"]
    return outputs


def images(outputs: list) -> int:
    return sum("image/png" in o.get("data", {}) for o in outputs)


def text(outputs: list) -> str:
    return "\n".join(o.get("data", {}).get("text/plain", "") + o.get("text", "") for o in outputs)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_runs_top_to_bottom(path, corpus, scored_runs, monkeypatch):
    runs = os.pathsep.join(map(str, scored_runs))
    outputs = executed(path, monkeypatch, APA_NOTEBOOK_CORPUS=str(corpus), APA_NOTEBOOK_RUNS=runs)
    assert images(outputs) >= (5 if path.name.startswith("01") else 3)  # histograms, phones / scatter, intervals


def test_a_fresh_clone_shows_the_committed_evidence(tmp_path, monkeypatch):
    """No corpus and no runs of one's own: the data notebook reads the committed test labels, the
    comparison notebook every committed row of bench/real_data, with their dev curves."""
    data = text(executed(NOTEBOOKS[0], monkeypatch, APA_NOTEBOOK_CORPUS=str(tmp_path / "no-corpus")))
    assert "{'test': 300}" in data and "mispronounced" in data and "no audio here" in data
    monkeypatch.delenv("APA_NOTEBOOK_RUNS", raising=False)
    outputs = executed(NOTEBOOKS[1], monkeypatch)
    rows = sorted(p.name for p in (PROJECT_ROOT / "bench" / "real_data").iterdir() if (p / "metrics.json").is_file())
    shown = text(outputs)
    assert all(f"({row})" in shown for row in rows)
    assert "dev/sentence/total/pcc" in shown and images(outputs) >= 7  # intervals, 3 grids, calibration, dev curves
