"""Imports point one way (docs/architecture.md section 1): a layer never imports a layer above it."""

import ast

import pytest

from .helpers import PROJECT_ROOT

PACKAGE = PROJECT_ROOT / "apa"
# What each part of apa may import from apa (besides itself and the helpers at the top).
ALLOWED = {
    "data": set(),
    "runs": set(),  # a run folder's layout and config: shared (below), so it imports nothing of apa's
    "atomic": set(),
    "distributed": set(),
    "quiet": set(),
    "tracking": set(),
    "prompts": {"data"},
    "models": {"data", "prompts"},
    "objectives": {"data", "prompts", "models"},
    "training": {"data", "prompts", "models", "objectives", "evaluation", "tracking"},
    "evaluation": {"data", "prompts", "models", "tracking"},
    # the edge: a run folder rebuilt with Hydra (evaluate.py and `apa score` read runs through it)
    "trained_run": {"data", "prompts", "models", "evaluation"},
    "jobs": {"data", "prompts", "models", "objectives", "evaluation", "training", "trained_run", "tracking"},
    # the console scripts, at the top: they may use every layer
    "score": {"data", "prompts", "models", "evaluation", "quiet", "trained_run"},
    "compare": {"evaluation"},
    "download": {"data"},
    "cli": {"score", "compare", "download"},
    "__main__": {"cli"},
    "__init__": {"quiet"},  # quietens libraries' import-time loggers before anything else loads
}
SHARED = {"atomic", "runs", "distributed"}  # they import nothing of apa's, so any part may import them
# Entry points inside the package (console scripts): like train.py and evaluate.py, they may use Hydra.
# The edge inside the package: configs made into jobs, a run folder's model rebuilt from its config.
ENTRY_POINTS = {"score.py", "trained_run.py", "jobs.py"}


def imports(path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


SOURCES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PROJECT_ROOT)))
def test_layers_import_downwards_only(path):
    part = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
    used = {name.split(".")[1] for name in imports(path) if name.startswith("apa.")} - {part} - SHARED
    assert part in ALLOWED, f"{part} is in no layer: add it to ALLOWED with what it may import"
    assert used <= ALLOWED[part], f"{part} imports {used - ALLOWED[part]}"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PROJECT_ROOT)))
def test_hydra_and_wandb_stay_at_the_edges(path):
    roots = {name.split(".")[0] for name in imports(path)}
    if path.relative_to(PACKAGE).as_posix() not in ENTRY_POINTS:
        assert "hydra" not in roots and "omegaconf" not in roots, "only entry points and tests use Hydra"
    if path.name != "tracking.py":
        assert "wandb" not in roots, "apa/tracking.py is the only module that imports wandb"
