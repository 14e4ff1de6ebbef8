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


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_runs_top_to_bottom(path, corpus, scored_runs, monkeypatch):
    monkeypatch.setenv("APA_NOTEBOOK_CORPUS", str(corpus))
    monkeypatch.setenv("APA_NOTEBOOK_RUNS", os.pathsep.join(map(str, scored_runs)))
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"], [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= (4 if path.name.startswith("01") else 1)  # histograms / scatter plots were drawn
