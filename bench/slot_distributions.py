"""Where the class distribution at the score slots goes in the first steps of training.

    python -m bench.slot_distributions objective.slot_ce_weight=0   # fair average alone: it collapses
    python -m bench.slot_distributions                              # fa as configured
    python -m bench.slot_distributions --every 5 trainer.arguments.max_steps=20 model=tiny

Trains the ``mini_speechocean762`` preset (any override applies; the defaults below shorten it to
30 steps without evaluation) and, before the first step and every ``--every`` steps, reads the
class distribution p at the slots of a fixed sample of training utterances: the top class's
probability, the entropy, the variance of the score under p (the expected value's gradient
scales with it), the range of the class logits, and per aspect the spread of the expected scores
across utterances beside the references' spread, and their correlation. One JSON line per probe.
BENCHMARKS.md's fair-average section quotes its output.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch
from transformers import TrainerCallback

from apa import training
from apa.jobs import train_job
from apa.models.forward import hidden_states, logits, slot_hidden
from bench.common import ROOT, compose_config

SHORT_RUN = [
    "experiment=mini_speechocean762",
    "objective=fa",
    "logger=none",
    "logger.group=slot_distributions",
    "test_split=null",
    "data.dev_speakers=null",
    "trainer.arguments.max_steps=30",
    "trainer.arguments.eval_strategy=no",
    "trainer.arguments.load_best_model_at_end=false",
    "trainer.arguments.save_strategy=no",
    "trainer.arguments.disable_tqdm=true",
]
SCORES = torch.arange(11.0)


def distribution_summary(class_logits: torch.Tensor, allowed: torch.Tensor) -> dict[str, float]:
    """Top-class probability, entropy, variance of the score under p and logit range, averaged over slots."""
    probs = torch.softmax(class_logits.masked_fill(~allowed, float("-inf")), dim=-1)
    expected = probs @ SCORES
    entropy = -(probs * probs.clamp_min(1e-12).log()).sum(-1)
    variance = (probs * (SCORES - expected[:, None]) ** 2).sum(-1)
    shown = class_logits.masked_fill(~allowed, float("nan"))
    logit_range = shown.nan_to_num(float("-inf")).amax(-1) - shown.nan_to_num(float("inf")).amin(-1)
    return {
        "top_probability": probs.max(-1).values.mean().item(),
        "entropy": entropy.mean().item(),
        "score_variance": variance.mean().item(),
        "logit_range": logit_range.mean().item(),
    }


def aspect_summary(expected: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """Spread of the expected scores across utterances, the references' spread, their correlation."""
    correlated = expected.std() > 0 and reference.std() > 0
    return {
        "sd_expected": float(expected.std()),
        "sd_reference": float(reference.std()),
        "mean_expected": float(expected.mean()),
        "mean_reference": float(reference.mean()),
        "pcc": float(np.corrcoef(expected, reference)[0, 1]) if correlated else None,
    }


class SlotProbe(TrainerCallback):
    """Reads the slots of ``size`` fixed training examples every ``every`` steps (and before the first)."""

    def __init__(self, every: int, size: int, aspects: list[str], seed: int = 0):
        self.every, self.size, self.aspects, self.seed = every, size, aspects, seed

    def on_train_begin(self, args, state, control, model=None, train_dataloader=None, **kwargs):
        dataset, collate = train_dataloader.dataset, train_dataloader.collate_fn
        chosen = np.random.default_rng(self.seed).choice(len(dataset), min(self.size, len(dataset)), replace=False)
        self.batches = [collate([dataset[int(i)] for i in chosen[j : j + 8]]) for j in range(0, len(chosen), 8)]
        self.probe(model, 0)

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step % self.every == 0:
            self.probe(model, state.global_step)

    @torch.no_grad()
    def probe(self, scorer, step: int) -> None:
        peft_model, objective = scorer.model, scorer.objective
        was_training = peft_model.training
        peft_model.eval()
        class_logits, allowed, targets, aspect = [], [], [], []
        for batch in self.batches:
            at_slots, valid = slot_hidden(hidden_states(peft_model, batch), batch)
            class_logits.append(logits(peft_model, at_slots)[:, objective.class_ids.to(at_slots.device)].float())
            allowed.append(batch["slot_classes"][valid])
            targets.append(batch["slot_targets"][valid])
            aspect.append(batch["slot_aspects"][valid])
        peft_model.train(was_training)
        class_logits, allowed = torch.cat(class_logits), torch.cat(allowed)
        targets, aspect = torch.cat(targets).numpy(), torch.cat(aspect).numpy()
        probs = torch.softmax(class_logits.masked_fill(~allowed, float("-inf")), dim=-1)
        expected = (probs @ SCORES).numpy()
        line = {"step": step, **distribution_summary(class_logits, allowed)}
        for index in sorted(set(aspect.tolist())):
            line[self.aspects[index]] = aspect_summary(expected[aspect == index], targets[aspect == index])
        print(json.dumps(line), flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--every", type=int, default=10, help="probe every N optimiser steps")
    parser.add_argument("--utterances", type=int, default=48, help="training utterances probed")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, after the short-run defaults")
    args = parser.parse_args(argv)
    output = f"paths.output_dir={ROOT / 'outputs' / 'slot_distributions'}"
    job = train_job(compose_config("train", [*SHORT_RUN, output, *args.overrides]))
    job.callbacks = [SlotProbe(args.every, args.utterances, job.prompt.aspect_names)]
    training.run(job)


if __name__ == "__main__":
    main()
