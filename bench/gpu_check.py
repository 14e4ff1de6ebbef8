"""A GPU check, ready for a GPU: a Qwen2-Audio of Qwen2-Audio-7B-Instruct's shape (its published
widths and vocabulary, random weights: nothing is downloaded) runs LoRA training steps of the
``multi`` prompt's fa recipe, slot decoding and generation in bf16 with sdpa, and prints tokens a
second, peak GPU memory and MFU against the GPU's peak.

    make gpu-check                                        # python -m bench.gpu_check --size 7b
    python -m bench.gpu_check --size tiny --device cpu    # the same code at the tiny model's size

Without CUDA, ``--device cuda`` says so and exits 0 (nothing measured). The work is
:mod:`bench.utilisation`'s (the Trainer's step in its parts, with activation checkpointing off
and on; FLOPs counted as they run; evaluate.py's decoders), on utterances of speechocean762's
median length (6 words, 4.3 s) whose audio is noise: speed and memory depend on shapes, not on
what is said. MFU is given against the GPU's datasheet bf16 peak (dense) when its name is known,
and against the measured peak of a large matrix product always. Commit its JSON line, with the
GPU's name, under ``bench/speed/`` when a GPU has run it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile
import torch
from transformers import Qwen2AudioForConditionalGeneration

from apa.data.audio import SAMPLE_RATE
from apa.data.records import Utterance
from apa.data.synthetic import make_speakers, plan_utterance
from apa.models.offline import TinyQwen2Audio
from apa.models.offline.tiny import qwen2_audio_processor, set_generation_tokens
from apa.training.run import adapted_model
from bench import paper_7b
from bench.utilisation import decoding, job_for, peak_flops, training

WORDS = 6  # speechocean762's median words per utterance (its whole subset)
SECONDS = 4.3  # and a typical utterance's length (bench/paper_7b.py)
GPU_PEAK_SIZE = 8192  # a product large enough to fill a data-centre GPU
# Datasheet bf16 tensor-core peaks, dense (no sparsity), FLOP/s; the first name found in the GPU's wins.
DATASHEET_BF16 = (
    ("H100 PCIe", 756e12),
    ("H100", 989e12),
    ("H200", 989e12),
    ("A100", 312e12),
    ("L40S", 362e12),
    ("L4", 121e12),
)


def seven_b_shape(cache_dir: str) -> TinyQwen2Audio:
    """The tiny model's builder at Qwen2-Audio-7B-Instruct's widths (``bench.paper_7b``)."""
    audio, text = paper_7b.AUDIO, paper_7b.TEXT
    return TinyQwen2Audio(
        cache_dir,
        audio_layers=audio["layers"],
        audio_hidden_size=audio["d_model"],
        text_layers=text["layers"],
        text_hidden_size=text["hidden"],
        attention_heads=text["heads"],
        key_value_heads=text["kv_heads"],
    )


def config_of(size: str, cache_dir: str):
    if size == "tiny":
        return TinyQwen2Audio(cache_dir).config()
    config = seven_b_shape(cache_dir).config()
    config.audio_config.encoder_attention_heads = paper_7b.AUDIO["heads"]
    config.audio_config.encoder_ffn_dim = paper_7b.AUDIO["ffn"]
    config.text_config.intermediate_size = paper_7b.TEXT["ffn"]
    return config


@dataclass(frozen=True)
class RandomQwen2Audio:
    """A model source (what ``conf/model`` instantiates) for a randomly initialised Qwen2-Audio of
    ``size``, built directly on ``device`` in bf16 with sdpa attention; never written to disk."""

    size: str
    device: str
    cache_dir: str
    modules_to_save: Sequence[str] = ()

    def load(self):
        config = config_of(self.size, self.cache_dir)
        with torch.device(self.device):
            model = Qwen2AudioForConditionalGeneration._from_config(
                config, torch_dtype=torch.bfloat16, attn_implementation="sdpa"
            )
        set_generation_tokens(model)
        return model, qwen2_audio_processor()


@dataclass(frozen=True)
class NoiseCorpus:
    """``count`` utterances a split of :data:`WORDS` words and :data:`SECONDS` of noise, labelled as
    the synthetic corpus labels its plans (valid scores on every scale); no dev split."""

    folder: Path
    count: int = 8

    def utterances(self, split: str) -> list[Utterance]:
        rng = np.random.default_rng(zlib.crc32(split.encode()))
        speaker = make_speakers(rng, 1)[0]
        utterances = []
        for i in range(self.count):
            words, first = [], None
            while len(words) < WORDS:
                plan = plan_utterance(rng, f"{split}{i}", speaker)
                first = first or plan.scores
                words += plan.scores.words
            scores = dataclasses.replace(first, words=tuple(words[:WORDS]))
            audio = self.folder / f"{split}{i}.wav"
            soundfile.write(audio, 0.05 * rng.standard_normal(int(SECONDS * SAMPLE_RATE)), SAMPLE_RATE)
            text = " ".join(word.text for word in scores.words)
            utterances.append(Utterance(f"{split}{i}", text, audio, scores))
        return utterances


def datasheet_peak(device: str) -> tuple[str, float | None]:
    if device != "cuda":
        return "cpu", None
    name = torch.cuda.get_device_name()
    return name, next((peak for key, peak in DATASHEET_BF16 if key in name), None)


def check(size: str, device: str, repeats: int, cache_dir: str) -> dict:
    """The measurements, as one dict (bench.utilisation's keys, with tokens a second, memory and MFU)."""
    name, datasheet = datasheet_peak(device)
    measured = peak_flops(torch.bfloat16, 2 * repeats, device, GPU_PEAK_SIZE if device == "cuda" else 512)
    with tempfile.TemporaryDirectory() as scratch:
        job, _ = job_for("tiny", cache_dir, Path(scratch) / "run")
        source = RandomQwen2Audio(size, device, cache_dir)
        job = dataclasses.replace(job, model=source, data=NoiseCorpus(Path(scratch)), limit=None)
        model, processor = source.load()
        model = adapted_model(job, model, processor)
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        results = training(job, model, processor, repeats)
        training_memory = torch.cuda.max_memory_allocated() if device == "cuda" else None
        results |= decoding(job, model, processor, repeats)
    achieved = results["training_step_model_flops"] / results["training_seconds_total"]
    results |= {
        "device": name,
        "size": size,
        "parameters": sum(p.numel() for p in model.parameters()),
        "training_tokens_per_second": results["training_step_tokens"] / results["training_seconds_total"],
        "training_peak_memory_bytes": training_memory,
        "peak_bf16_flops_measured": measured,
        "peak_bf16_flops_datasheet": datasheet,
        "training_mfu_measured_peak": achieved / measured,
        "training_mfu_datasheet": achieved / datasheet if datasheet else None,
    }
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gpu_check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=("7b", "tiny"), default="7b")
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cache-dir", default=str(Path("~/.cache/apa").expanduser()))
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("gpu-check: skipped, no CUDA device here (nothing measured; run it where `nvidia-smi` shows a GPU)")
        return 0
    print(json.dumps(check(args.size, args.device, args.repeats, args.cache_dir)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
