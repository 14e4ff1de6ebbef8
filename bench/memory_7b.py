"""GPU memory of a Qwen2-Audio-7B LoRA training process, on paper, from measured token counts:
bf16 base weights against 4-bit (QLoRA), batch 1, 4 and 8, activation checkpointing off and on.

    python -m bench.memory_7b [--corpus ../shared/data/speechocean762]   # writes bench/speed/memory-7b.json

**Tokens** are measured, not assumed: every utterance of the corpus (both splits) encoded as
training encodes it, with Qwen2-Audio's real tokenizer and chat template, per prompt: audio tokens
from the recording's length, the prompt's text tokens, the answer's tokens (added score tokens
where the prompt writes them). A batch's sequence is the median one (length-grouped batches pad
little).

**Memory** (per process, bytes), with the widths of :mod:`bench.paper_7b`:
- weights: bf16, 2 bytes a parameter; 4-bit: the language model's linear layers at 4.127 bits a
  parameter (NF4, with one 8-bit absmax per 64 weights and one fp32 constant per 256 of those,
  double quantisation), everything else (audio tower, projector, embeddings, LM head) in bf16;
- LoRA (rank 8 on every projection, as ``wang2025_*``): fp32 weights, gradients and Adam's two
  moments, 16 bytes a parameter;
- activations, bf16, per layer and token: (6 h + 3 f) x 2 bytes kept for the backward pass (the
  attention block's inputs, queries, keys, values and output, the MLP's three products; sdpa keeps
  no attention matrix); with checkpointing, each layer's input (h x 2 bytes) and one layer's
  activations at a time. The audio tower's outputs are cached (apa's default), so it keeps none;
- logits in fp32 with their gradient at the answer's tokens (what ``ce`` reads; fa and regression
  read 11 classes at the slots, far less);
- 1.5 GB for the CUDA context and the allocator's slack.
It is an estimate to plan with (within about 10%, on the experience of such models), not a
measurement: ``make gpu-check`` measures the peak on a GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from pathlib import Path

import soundfile
from hydra.utils import instantiate

from apa.data.speechocean762 import Speechocean762
from apa.models.encoding import PromptEncoder, audio_token_count
from apa.models.offline.tiny import qwen2_audio_processor
from bench import paper_7b
from bench.common import compose_config

PROMPTS = ("wang2025_multi", "multi_compact")
BATCHES = (1, 4, 8)
HOP = 160  # Whisper's feature hop: one mel frame per 10 ms of 16 kHz audio
NF4_BITS = 4 + 8 / 64 + 32 / (64 * 256)
GB = 1e9
RUNTIME = 1.5 * GB
OUTPUT = Path(__file__).parent / "speed" / "memory-7b.json"
CORPUS = os.environ.get("APA_SPEECHOCEAN762", "../shared/data/speechocean762")


def measured_tokens(root: str, prompts: tuple[str, ...] = PROMPTS) -> dict[str, dict[str, float]]:
    """Median audio, prompt-text and answer tokens a sample, per prompt, over the corpus's utterances."""
    corpus = Speechocean762(root)
    utterances = corpus.utterances("train") + corpus.utterances("test")
    frames = {u.id: soundfile.info(str(u.audio)).frames // HOP for u in utterances}
    counts = {}
    for name in prompts:
        prompt = instantiate(compose_config("train", [f"prompt={name}"]).prompt)
        tokenizer = qwen2_audio_processor().tokenizer
        tokenizer.add_tokens(prompt.vocabulary.new_tokens)
        encoder = PromptEncoder(tokenizer, prompt)
        samples = []
        for u in utterances:
            encoded = encoder.encode(u, frames[u.id])
            audio = audio_token_count(frames[u.id])
            samples.append((audio, encoded.target_start - audio, len(encoded) - encoded.target_start))
        audio, text, answer = (statistics.median(column) for column in zip(*samples, strict=True))
        counts[name] = {"audio": audio, "prompt": text, "answer": answer, "sequence": audio + text + answer}
    return counts | {"utterances": len(utterances)}


def weights_bytes(quantized: bool) -> float:
    parts = paper_7b.parameters()
    if not quantized:
        return 2 * sum(parts.values())
    return parts["language_model_layers"] * NF4_BITS / 8 + 2 * (sum(parts.values()) - parts["language_model_layers"])


def activations_bytes(sequence: float, checkpointing: bool) -> float:
    t = paper_7b.TEXT
    one_layer = sequence * (6 * t["hidden"] + 3 * t["ffn"]) * 2
    if checkpointing:
        return t["layers"] * sequence * t["hidden"] * 2 + one_layer
    return t["layers"] * one_layer


def memory_gb(tokens: dict[str, float], batch: int, quantized: bool, checkpointing: bool) -> float:
    lora = paper_7b.lora_parameters() * 16
    logits = tokens["answer"] * paper_7b.TEXT["vocab"] * 4 * 2
    per_sample = activations_bytes(tokens["sequence"], checkpointing) + logits
    return (weights_bytes(quantized) + lora + batch * per_sample + RUNTIME) / GB


def table(counts: dict) -> list[dict]:
    rows = []
    for prompt in PROMPTS:
        for quantized in (False, True):
            for checkpointing in (False, True):
                rows.append(
                    {
                        "prompt": prompt,
                        "sequence_tokens": counts[prompt]["sequence"],
                        "weights": "4-bit" if quantized else "bf16",
                        "activation_checkpointing": checkpointing,
                        **{
                            f"batch_{b}_gb": round(memory_gb(counts[prompt], b, quantized, checkpointing), 1)
                            for b in BATCHES
                        },
                    }
                )
    return rows


def markdown(rows: list[dict]) -> str:
    lines = [
        "| prompt (median tokens) | weights | checkpointing | batch 1 | batch 4 | batch 8 |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        on = "on" if row["activation_checkpointing"] else "off"
        cells = " | ".join(f"{row[f'batch_{b}_gb']:.1f} GB" for b in BATCHES)
        lines.append(f"| `{row['prompt']}` ({row['sequence_tokens']:.0f}) | {row['weights']} | {on} | {cells} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.memory_7b")
    parser.add_argument("--corpus", default=CORPUS, help="a speechocean762 folder (official layout)")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    counts = measured_tokens(args.corpus)
    rows = table(counts)
    args.output.write_text(json.dumps({"tokens": counts, "memory": rows}, indent=1) + "\n")
    print(markdown(rows))


if __name__ == "__main__":
    main()
