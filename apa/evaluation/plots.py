"""Figures of an evaluation (predicted against reference scores, confusion of rounded scores) and of
a comparison of runs (scatter grids, metrics with intervals, calibration, dev curves).

Built with matplotlib's object interface (no pyplot, no global state, no window)."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from apa.data.scales import scale_of
from apa.evaluation.pairing import Pairs


def scatter(pairs: Pairs, granularity: str, aspect: str) -> Figure:
    figure = Figure(figsize=(4, 4), layout="tight")
    draw_scatter(figure.subplots(), pairs, granularity, aspect, f"{granularity} {aspect}")
    return figure


def draw_scatter(axes, pairs: Pairs, granularity: str, aspect: str, title: str, title_size: float = 12) -> None:
    """Predicted against reference (references jittered a little, so equal ones do not hide each other)."""
    predicted, reference, _ = pairs.arrays()
    top = scale_of(granularity, aspect).native_max
    jitter = np.random.default_rng(0).uniform(-0.08, 0.08, len(reference)) * top / 10
    axes.scatter(reference + jitter, predicted, s=6, alpha=0.4)
    axes.plot([0, top], [0, top], color="grey", linewidth=1)
    limits = (-0.05 * top, 1.05 * top)
    axes.set(xlim=limits, ylim=limits, xlabel="reference", ylabel="predicted")
    axes.set_title(title, fontsize=title_size)


def scatter_grid(pairs_by_run: Mapping[str, Pairs], granularity: str, aspect: str, columns: int = 4) -> Figure:
    """One predicted-against-reference panel per run, on the same axes."""
    rows = math.ceil(len(pairs_by_run) / columns)
    figure = Figure(figsize=(3 * columns, 3 * rows), layout="tight")
    grid = figure.subplots(rows, columns, squeeze=False).ravel()
    for axes, (name, pairs) in zip(grid, pairs_by_run.items(), strict=False):
        draw_scatter(axes, pairs, granularity, aspect, textwrap.fill(name, 34), title_size=8)
    for axes in grid[len(pairs_by_run) :]:
        axes.set_axis_off()
    figure.suptitle(f"{granularity} {aspect}: predicted against reference")
    return figure


def intervals(values: Mapping[str, Mapping[str, tuple[float | None, Sequence[float] | None]]], metric: str) -> Figure:
    """A metric with its 95% interval per run (rows), one panel per aspect: ``values[aspect][run]``
    is (value, interval); an undefined value is left out of its panel."""
    figure = Figure(figsize=(3.2 * len(values), 0.35 * max(map(len, values.values())) + 1.2), layout="tight")
    for axes, (aspect, by_run) in zip(figure.subplots(1, len(values), squeeze=False)[0], values.items(), strict=True):
        names = list(by_run)
        for row, name in enumerate(names):
            value, interval = by_run[name]
            if value is None:
                continue
            low, high = interval if interval else (value, value)
            axes.errorbar(value, row, xerr=[[value - low], [high - value]], fmt="o", capsize=3, markersize=4)
        axes.set(yticks=range(len(names)), title=aspect, xlabel=metric)
        axes.set_yticklabels(names if axes is figure.axes[0] else [""] * len(names), fontsize=8)
        axes.invert_yaxis()
    return figure


def calibration(pairs_by_run: Mapping[str, Pairs], granularity: str, aspect: str, bands: int = 10) -> Figure:
    """The mean prediction in each band of the reference score (bands with 5 items or more): on the
    diagonal, a scorer that is right on average at every level; flat, one that answers the middle."""
    top = scale_of(granularity, aspect).native_max
    edges = np.linspace(0, top, bands + 1)
    figure = Figure(figsize=(8, 4), layout="tight")
    axes = figure.subplots()
    for name, pairs in pairs_by_run.items():
        predicted, reference, _ = pairs.arrays()
        band = np.clip(np.digitize(reference, edges) - 1, 0, bands - 1)
        kept = [b for b in range(bands) if (band == b).sum() >= 5]
        axes.plot(
            [reference[band == b].mean() for b in kept], [predicted[band == b].mean() for b in kept], "o-", label=name
        )
    axes.plot([0, top], [0, top], color="grey", linewidth=1)
    axes.set(xlabel="reference (band mean)", ylabel="mean prediction", title=f"{granularity} {aspect}: calibration")
    outside_legend(axes)
    return figure


def dev_curves(histories: Mapping[str, Mapping], metric: str) -> Figure:
    """A dev metric at every evaluation of each run (``dev_history.json``), the kept step circled."""
    figure = Figure(figsize=(9, 3.5), layout="tight")
    axes = figure.subplots()
    for name, history in histories.items():
        points = [(e["step"], e[metric]) for e in history["evaluations"] if e.get(metric) is not None]
        if not points:
            continue
        (line,) = axes.plot(*zip(*points, strict=True), "o-", markersize=3, label=name)
        kept = [value for step, value in points if step == history.get("kept_step")]
        if kept:
            axes.plot(history["kept_step"], kept[0], "o", markersize=10, fillstyle="none", color=line.get_color())
    axes.set(xlabel="step", ylabel=metric, title=f"{metric} during training (circled: the step kept)")
    outside_legend(axes)
    return figure


def outside_legend(axes) -> None:
    """The legend right of the plot, where many runs' names cover no point."""
    axes.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))


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
