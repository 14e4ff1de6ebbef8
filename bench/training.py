"""Training speed and memory: this project's trainer against the script a user would write.

Both train the same LoRA adapter (same model, rank and targets) with cross-entropy on the same
synthetic utterances, prompt (scores written as digits, as a plain script would), batch size and
number of steps, each in a fresh
process (``python -m bench.training ours|trl ...``), which prints one JSON line: training
samples per second (model loading excluded) and the process's peak memory.

- ``ours``: ``apa.training`` — features and audio-tower outputs from the caches (built before,
  their cost is measured in ``bench.caches``), length-grouped batches, the tower skipped.
- ``trl``: TRL's ``SFTTrainer`` with a collator that reads the audio and runs the Qwen2-Audio
  processor for every batch, as its documentation shows for audio models, and the stock forward.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import torch
from datasets import Dataset
from hydra.utils import instantiate
from omegaconf import OmegaConf
from transformers import TrainerCallback

from apa import training
from apa.data import SyntheticCorpus, load_audio
from apa.jobs import train_job
from apa.models import adapter_config, apply_lora
from apa.models.score_tokens import add_score_tokens
from bench.common import compose_run


class Stopwatch(TrainerCallback):
    """Wall time of the training loop alone."""

    def on_train_begin(self, args, state, control, **kwargs):
        self.start = time.perf_counter()

    def on_train_end(self, args, state, control, **kwargs):
        self.seconds = time.perf_counter() - self.start


def config(model: str, cache_dir: str, utterances: int, batch_size: int, steps: int, run_dir: Path, *overrides: str):
    """The benchmarked training run as train.py composes it (no evaluation, no tracking), in
    ``run_dir``, then ``overrides``."""
    trainer = "trainer.arguments"
    return compose_run(
        "train",
        [
            f"model={model}",
            "data=synthetic",
            "prompt=sentence",
            "prompt.score_tokens=digits",  # as a plain script writes them
            "objective=ce",
            f"paths.cache_dir={cache_dir}",
            f"limit={utterances}",
            f"{trainer}.max_steps={steps}",
            f"{trainer}.gradient_accumulation_steps=1",
            f"{trainer}.per_device_train_batch_size={batch_size}",
            f"{trainer}.save_strategy=no",
            f"{trainer}.disable_tqdm=true",
            f"{trainer}.logging_steps=1000",
            "test_split=null",
            "logger=none",
            *overrides,
        ],
        run_dir,
    )


def training_job(cfg, timer: TrainerCallback) -> training.TrainJob:
    """train.py's job for a :func:`config`, timed by ``timer``."""
    job = train_job(cfg)
    job.callbacks = [timer]
    return job


def ours(cfg) -> float:
    stopwatch = Stopwatch()
    training.run(training_job(cfg, stopwatch))
    return stopwatch.seconds


def trl_baseline(cfg) -> float:
    from trl import SFTConfig, SFTTrainer

    model, processor = instantiate(cfg.model).load()
    prompt = instantiate(cfg.prompt)
    score_ids = add_score_tokens(model, processor.tokenizer, prompt.vocabulary)
    model = apply_lora(model, adapter_config(instantiate(cfg.lora), model, score_ids, []))
    utterances = instantiate(cfg.data).utterances("train")[: cfg.limit]
    rows = [
        {
            "audio": str(u.audio),
            "prompt": processor.apply_chat_template(prompt.messages(u), add_generation_prompt=True, tokenize=False),
            "answer": prompt.render(u.scores).text + "<|im_end|>",
        }
        for u in utterances
    ]

    def collate(batch):
        audio = [load_audio(row["audio"]) for row in batch]
        inputs = processor(
            text=[r["prompt"] + r["answer"] for r in batch],
            audio=audio,
            sampling_rate=16000,
            padding=True,
            return_tensors="pt",
        )
        labels = inputs["input_ids"].clone()
        for row, item in enumerate(batch):
            answer = len(processor.tokenizer(item["answer"], add_special_tokens=False)["input_ids"])
            length = int(inputs["attention_mask"][row].sum())
            labels[row, : length - answer] = -100
            labels[row, length:] = -100
        return {**inputs, "labels": labels}

    arguments = OmegaConf.to_container(cfg.trainer.arguments)
    arguments.pop("train_sampling_strategy")
    stopwatch = Stopwatch()
    trainer = SFTTrainer(
        model=model,
        args=SFTConfig(
            output_dir=cfg.paths.output_dir,
            report_to=[],
            remove_unused_columns=False,
            dataset_kwargs={"skip_prepare_dataset": True},
            use_cpu=not torch.cuda.is_available(),
            **{k: v for k, v in arguments.items() if v is not None},
        ),
        train_dataset=Dataset.from_list(rows),
        data_collator=collate,
        processing_class=processor.tokenizer,
        callbacks=[stopwatch],
    )
    trainer.train()
    return stopwatch.seconds


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.training")
    parser.add_argument("system", choices=["ours", "trl"])
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--cache-dir", required=True)
    parser.add_argument("--output-dir", required=True, type=Path)
    parser.add_argument("--utterances", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--steps", type=int, default=8)
    args = parser.parse_args()
    cfg = config(args.model, args.cache_dir, args.utterances, args.batch_size, args.steps, args.output_dir)
    SyntheticCorpus(args.cache_dir).utterances("train")  # the corpus exists before anything is timed
    seconds = (ours if args.system == "ours" else trl_baseline)(cfg)
    peak_bytes = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"samples_per_second": args.steps * args.batch_size / seconds, "peak_rss_bytes": peak_bytes}))


if __name__ == "__main__":
    main()
