"""Figures of an evaluation: predicted against reference scores, and confusion of rounded scores.

Built with matplotlib's object interface (no pyplot, no global state, no window)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from apa.data.scales import scale_of
from apa.evaluation.pairing import Pairs


def scatter(pairs: Pairs, granularity: str, aspect: str) -> Figure:
    predicted, reference, _ = pairs.arrays()
    top = scale_of(granularity, aspect).native_max
    figure = Figure(figsize=(4, 4), layout="tight")
    axes = figure.subplots()
    jitter = np.random.default_rng(0).uniform(-0.08, 0.08, len(reference)) * top / 10
    axes.scatter(reference + jitter, predicted, s=6, alpha=0.4)
    axes.plot([0, top], [0, top], color="grey", linewidth=1)
    limits = (-0.05 * top, 1.05 * top)
    axes.set(xlim=limits, ylim=limits, xlabel="reference", ylabel="predicted", title=f"{granularity} {aspect}")
    return figure


def confusion(pairs: Pairs, granularity: str, aspect: str) -> Figure:
    """Counts of (reference class, predicted class) on the 0-10 score scale."""
    scale = scale_of(granularity, aspect)
    predicted, reference, _ = pairs.arrays()
    counts = np.zeros((11, 11), dtype=int)
    for p, r in zip(predicted, reference, strict=True):
        counts[scale.nearest_class(r), scale.nearest_class(p)] += 1
    figure = Figure(figsize=(4.5, 4), layout="tight")
    axes = figure.subplots()
    image = axes.imshow(counts, cmap="Blues", origin="lower")
    axes.set(xlabel="predicted class", ylabel="reference class", title=f"{granularity} {aspect}")
    figure.colorbar(image, ax=axes)
    return figure


def figures(pairs: dict[tuple[str, str], Pairs]) -> dict[str, Figure]:
    out = {}
    for (granularity, aspect), pair in pairs.items():
        if pair.predicted:
            out[f"scatter/{granularity}/{aspect}"] = scatter(pair, granularity, aspect)
            out[f"confusion/{granularity}/{aspect}"] = confusion(pair, granularity, aspect)
    return out


def save(figures_by_name: dict[str, Figure], folder: Path) -> dict[str, Path]:
    """PNG files of the figures, by name."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, figure in figures_by_name.items():
        paths[name] = folder / f"{name.replace('/', '_')}.png"
        figure.savefig(paths[name], dpi=100)
    return paths
