"""Training recipes compared in one process: the time of a training step per sample, each recipe
on the same utterances, their steps interleaved so that the machine's noise falls on all alike.

``python -m bench.recipes NAME="OVERRIDE ..." NAME="OVERRIDE ..." [--output FILE]`` prints one JSON
object (and writes it to FILE): per recipe, the micro-batch's tokens, the median step (forward and
backward under bf16 autocast, AdamW, as the Trainer runs them; ``bench.utilisation``'s step) and
its seconds per sample, and its speed-up over the first recipe. Every recipe is
``mini_speechocean762``'s ``multi``-prompt fa job (``bench.utilisation.job_for``: the real subset
when it is here) with the recipe's train.py overrides, e.g. the preset before and after a change::

    python -m bench.recipes before="prompt=multi model.attn_implementation=sdpa" after="prompt=multi_compact"
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from apa.training.run import adapted_model, training_collator, training_set
from apa.training.trainer import Scorer
from bench.common import machine, summary
from bench.utilisation import BATCH, TrainingStep, job_for, median_indices


def recipe_step(model_name: str, cache_dir: str, run_dir: Path, overrides: list[str], indices: list[int] | None):
    """A recipe's training step on the examples at ``indices`` (its median batch when None: the first
    recipe's median batch is then every recipe's)."""
    job, real = job_for(model_name, cache_dir, run_dir, tuple(overrides))
    model, processor = job.model.load()
    model = adapted_model(job, model, processor)
    dataset = training_set(job, model, processor)
    indices = median_indices(dataset.lengths) if indices is None else indices
    scorer = Scorer(model, job.objective)
    scorer.train()
    step = TrainingStep(scorer, training_collator(job, processor), [dataset[i] for i in indices], 5e-4)
    return step, indices, real


def compare(recipes: dict[str, list[str]], model_name: str, cache_dir: str, repeats: int) -> dict:
    steps, indices, real = {}, None, False
    with tempfile.TemporaryDirectory() as folder:
        for name, overrides in recipes.items():
            steps[name], indices, real = recipe_step(model_name, cache_dir, Path(folder) / name, overrides, indices)
        for step in steps.values():
            step()  # warm-up
        seconds: dict[str, list[float]] = {name: [] for name in steps}
        for _ in range(repeats):  # interleaved: recipe A, B, A, B, ...
            for name, step in steps.items():
                seconds[name].append(step()["total"])
    first = summary(seconds[next(iter(seconds))])["median"]
    results = {
        name: {
            "overrides": recipes[name],
            "batch_tokens": steps[name].tokens(),
            "step_seconds": summary(values),
            "seconds_per_sample": summary(values)["median"] / BATCH,
            "speedup": first / summary(values)["median"],
        }
        for name, values in seconds.items()
    }
    return {"model": model_name, "real_speech": real, "batch": BATCH, "machine": machine(), "recipes": results}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.recipes")
    parser.add_argument("recipes", nargs="+", help='NAME="train.py overrides" (the first is the baseline)')
    parser.add_argument("--model", default="mini")
    parser.add_argument("--cache-dir", default=str(Path("~/.cache/apa").expanduser()))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--output", type=Path, help="also write the JSON here")
    args = parser.parse_args()
    recipes = {}
    for recipe in args.recipes:
        name, equals, overrides = recipe.partition("=")
        if not equals or not name:
            parser.error(f'{recipe!r}: expected NAME="OVERRIDE ..."')
        recipes[name] = overrides.split()
    results = compare(recipes, args.model, args.cache_dir, args.repeats)
    text = json.dumps(results, indent=2)
    if args.output:
        args.output.write_text(text + "\n")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
