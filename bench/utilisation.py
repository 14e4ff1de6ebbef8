"""How close to this machine's limit apa runs: the peak matrix-multiply rate measured here, the
model FLOPs of real work counted as it runs, their ratio (model-FLOPs utilisation, MFU), and where
a training step's time goes.

``python -m bench.utilisation --model mini [OVERRIDE ...]`` prints one JSON line (``bench.run``
runs it in a fresh process); train.py overrides measure another recipe (``lora.lora_dropout=0.05``).

- **Peak**: the median rate of (n x n) @ (n x n) products (2n^3 FLOPs, n = 2048) in fp32 and in
  bf16: the ceiling of this machine's matrix units, for the shapes they do best.
- **Model FLOPs**: ``torch.utils.flop_counter.FlopCounterMode`` counts the matrix products and the
  attention of the real computation, on real speechocean762 utterances when the corpus is here
  (``mini_speechocean762``'s ``multi`` prompt and fa objective): one training micro-batch of the
  preset's size (forward and backward, without recomputation: the model's FLOPs, not the
  hardware's), one slot-decoded batch and one generated batch (evaluate.py's decoders).
- **MFU**: model FLOPs / median seconds / the peak of the precision the work runs in: bf16 for
  training (autocast, as the Trainer runs it) and the dev split's decoding, fp32 for evaluate.py's.
- **Where a step's time goes**: each part of the Trainer's step timed on its own (collating,
  autocast forward, backward, AdamW), with activation checkpointing off and on: the difference of
  the backward passes is the recomputation. One step under ``torch.profiler`` gives each operator's
  share of the time (the largest five).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode

from apa.evaluation import GenerationDecoder, SlotDecoder
from apa.jobs import train_job
from apa.training.run import adapted_model, split_features, training_collator, training_set
from apa.training.trainer import Scorer
from bench.common import compose_run, measure, timed
from bench.scoring import answer_tokens

PEAK_SIZE = 2048
BATCH = 4  # mini_speechocean762's micro-batch
TOP_OPERATORS = 5
SPEECHOCEAN762 = os.environ.get("APA_SPEECHOCEAN762", "../shared/data/speechocean762")


def peak_flops(dtype: torch.dtype, repeats: int, device: str = "cpu", size: int = PEAK_SIZE) -> float:
    """FLOP/s of the median (n x n) @ (n x n) product in ``dtype`` on ``device``."""
    a, b = (torch.randn(size, size, dtype=dtype, device=device) for _ in range(2))
    torch.mm(a, b)  # warm-up: the kernel chosen, the memory touched
    seconds = measure(lambda: timed(lambda: torch.mm(a, b)), repeats)["median"]
    return 2 * size**3 / seconds


def counted_flops(run: Callable[[], object]) -> int:
    with FlopCounterMode(display=False) as counter:
        run()
    return counter.get_total_flops()


def bf16_autocast(enabled: bool = True, device_type: str = "cpu"):
    return torch.autocast(device_type, dtype=torch.bfloat16) if enabled else nullcontext()


def device_type(model: torch.nn.Module) -> str:
    return next(model.parameters()).device.type


def job_for(model: str, cache_dir: str, run_dir: Path, overrides: tuple[str, ...] = ()):
    """The ``mini_speechocean762`` preset's multi-prompt fa job on ``model``, its first 32
    utterances per split, then ``overrides``; on the synthetic corpus when speechocean762 is not
    on this machine."""
    real = (Path(SPEECHOCEAN762) / "resource" / "scores.json").is_file()
    data = [f"data.root={SPEECHOCEAN762}"] if real else ["data=synthetic", "~data.root"]
    settings = ["experiment=mini_speechocean762", *data, "data.dev_speakers=null", f"model={model}", "prompt=multi"]
    settings += ["objective=fa", f"paths.cache_dir={cache_dir}"]
    settings += ["logger=none", "limit=32", *overrides]
    return train_job(compose_run("train", settings, run_dir)), real


def median_indices(lengths: list[int]) -> list[int]:
    """The ``BATCH`` examples around the median length: a typical length-grouped batch."""
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    middle = len(order) // 2 - BATCH // 2
    return order[middle : middle + BATCH]


def median_batch(dataset) -> list:
    return [dataset[i] for i in median_indices(dataset.lengths)]


class TrainingStep:
    """The Trainer's step in its parts: collate, forward under bf16 autocast, backward, AdamW."""

    PARTS = ("data", "forward", "backward", "optimizer")

    def __init__(self, scorer: Scorer, collate, items: list, learning_rate: float):
        self.scorer, self.collate, self.items = scorer, collate, items
        trained = [p for p in scorer.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(trained, lr=learning_rate)
        self.device_type = device_type(scorer)

    def __call__(self) -> dict[str, float]:
        seconds, batch, loss = {}, None, None

        def collate():
            nonlocal batch
            batch = self.collate(self.items)

        def forward():
            nonlocal loss
            loss = self.loss(batch)

        def step():
            self.optimizer.step()
            self.optimizer.zero_grad()

        for part, run in zip(self.PARTS, (collate, forward, lambda: loss.backward(), step), strict=True):
            seconds[part] = timed(run)
        return {**seconds, "total": sum(seconds.values())}

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The forward pass, under bf16 autocast as the Trainer runs it."""
        with bf16_autocast(device_type=self.device_type):
            return self.scorer(**batch).loss

    def model_flops(self) -> int:
        batch = self.collate(self.items)
        flops = counted_flops(lambda: self.loss(batch).backward())
        self.optimizer.zero_grad()
        return flops

    def operator_shares(self) -> dict[str, float]:
        """Each operator's share of one step's operator time (its own, not its callees'; on a GPU, its
        kernels' time), largest first."""
        on_gpu = self.device_type == "cuda"
        activities = [ProfilerActivity.CPU, *([ProfilerActivity.CUDA] if on_gpu else [])]
        with profile(activities=activities) as profiler:
            self()
        events = profiler.key_averages()
        own = (lambda e: e.self_device_time_total) if on_gpu else (lambda e: e.self_cpu_time_total)
        total = sum(own(e) for e in events)
        shares = {e.key: own(e) / total for e in events if own(e)}
        return dict(sorted(shares.items(), key=lambda item: -item[1]))

    def tokens(self) -> int:
        return int(self.collate(self.items)["attention_mask"].sum())


def training(job, model, processor, repeats: int) -> dict:
    dataset = training_set(job, model, processor)
    scorer = Scorer(model, job.objective)
    scorer.train()
    step = TrainingStep(scorer, training_collator(job, processor), median_batch(dataset), 5e-4)
    results = {"training_step_model_flops": step.model_flops(), "training_step_tokens": step.tokens()}
    base = model.get_base_model()
    for checkpointing in (False, True):
        if checkpointing:
            base.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        step()  # warm-up
        parts = measure(step, repeats)
        prefix = "training_checkpointed" if checkpointing else "training"
        results |= {f"{prefix}_seconds_{part}": parts[part]["median"] for part in (*TrainingStep.PARTS, "total")}
    base.activation_checkpointing_disable()
    results["training_recompute_seconds"] = (
        results["training_checkpointed_seconds_backward"] - results["training_seconds_backward"]
    )
    shares = step.operator_shares()
    results["training_largest_operators"] = dict(list(shares.items())[:TOP_OPERATORS])
    return results


def decoding(job, model, processor, repeats: int) -> dict:
    model.eval()
    utterances, features = split_features(job, processor, "test")
    utterances = utterances[:BATCH]
    decoders = {
        "slot_decoding": (SlotDecoder(BATCH, masked_slots=True), False),  # evaluate.py: fp32
        "slot_decoding_bf16": (SlotDecoder(BATCH, masked_slots=True), True),  # the dev split during training
        "generation": (GenerationDecoder(BATCH, answer_tokens(processor, job.prompt, utterances, features)), False),
    }
    results = {}
    for name, (decoder, bf16) in decoders.items():

        def run(decoder=decoder, bf16=bf16):
            with bf16_autocast(bf16, device_type(model)):
                decoder.predict(model, processor, job.prompt, utterances, features)

        flops = counted_flops(run)  # also the warm-up
        results[f"{name}_flops_per_utterance"] = flops / len(utterances)
        seconds = measure(lambda run=run: timed(run), repeats)["median"]
        results[f"{name}_seconds_per_utterance"] = seconds / len(utterances)
    return results


def benchmark(model_name: str, cache_dir: str, repeats: int, overrides: tuple[str, ...] = ()) -> dict:
    peak = {"fp32": peak_flops(torch.float32, 2 * repeats), "bf16": peak_flops(torch.bfloat16, 2 * repeats)}
    with tempfile.TemporaryDirectory() as run_dir:
        job, real = job_for(model_name, cache_dir, Path(run_dir), overrides)
        model, processor = job.model.load()
        model = adapted_model(job, model, processor)
        results = {"peak_fp32_flops": peak["fp32"], "peak_bf16_flops": peak["bf16"], "utilisation_real_speech": real}
        results |= training(job, model, processor, repeats) | decoding(job, model, processor, repeats)
    achieved = results["training_step_model_flops"] / results["training_seconds_total"]
    results["training_mfu"] = achieved / peak["bf16"]
    for name, precision in (("slot_decoding", "fp32"), ("slot_decoding_bf16", "bf16"), ("generation", "fp32")):
        rate = results[f"{name}_flops_per_utterance"] / results[f"{name}_seconds_per_utterance"]
        results[f"{name}_mfu"] = rate / peak[precision]
    return results


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.utilisation")
    parser.add_argument("--model", default="mini")
    parser.add_argument("--cache-dir", default=str(Path("~/.cache/apa").expanduser()))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("overrides", nargs="*", help="train.py overrides, e.g. lora.lora_dropout=0.05")
    args = parser.parse_args()
    print(json.dumps(benchmark(args.model, args.cache_dir, args.repeats, tuple(args.overrides))))


if __name__ == "__main__":
    main()
