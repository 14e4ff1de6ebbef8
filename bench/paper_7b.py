"""Qwen2-Audio-7B-Instruct with LoRA, on paper: FLOPs per sample and memory at batch 1.

The dimensions are those of the model's published ``config.json``; a sample is a typical
speechocean762 utterance (4.3 s of audio) with Wang et al.'s multi-granularity prompt and answer.
Counting convention: a matrix product of (m x k) by (k x n) costs 2mkn FLOPs; a frozen layer's
backward pass computes only input gradients (about one forward), LoRA's own gradients are
negligible, and activation checkpointing adds one more forward of the language model.
"""

from __future__ import annotations

AUDIO = dict(d_model=1280, layers=32, ffn=5120, heads=20, mel_bins=128, positions=1500)
TEXT = dict(hidden=4096, layers=32, ffn=11008, vocab=156032, kv_heads=32, heads=32)
SAMPLE = dict(audio_seconds=4.3, prompt_tokens=120, answer_tokens=150)  # multi prompt, digits answer
LORA = dict(rank=8, modules=("q", "k", "v", "o", "gate", "up", "down"))
GB = 1e9


def parameters() -> dict[str, float]:
    a, t = AUDIO, TEXT
    tower_layer = 4 * a["d_model"] ** 2 + 2 * a["d_model"] * a["ffn"]
    tower = a["layers"] * tower_layer + 3 * a["d_model"] * (a["mel_bins"] + a["d_model"])  # + the two convolutions
    text_layer = 4 * t["hidden"] ** 2 + 3 * t["hidden"] * t["ffn"]
    return {
        "audio_tower": tower,
        "projector": a["d_model"] * t["hidden"],
        "language_model_layers": t["layers"] * text_layer,
        "embeddings_and_head": 2 * t["vocab"] * t["hidden"],
    }


def lora_parameters() -> float:
    t, r = TEXT, LORA["rank"]
    shapes = {
        "q": (t["hidden"], t["hidden"]),
        "k": (t["hidden"], t["hidden"]),
        "v": (t["hidden"], t["hidden"]),
        "o": (t["hidden"], t["hidden"]),
        "gate": (t["hidden"], t["ffn"]),
        "up": (t["hidden"], t["ffn"]),
        "down": (t["ffn"], t["hidden"]),
    }
    return t["layers"] * sum(r * (i + o) for i, o in (shapes[m] for m in LORA["modules"]))


def tokens() -> dict[str, int]:
    mel_frames = int(SAMPLE["audio_seconds"] * 100)
    audio = ((mel_frames - 1) // 2 + 1 - 2) // 2 + 1
    return {
        "mel_frames": mel_frames,
        "audio": audio,
        "sequence": audio + SAMPLE["prompt_tokens"] + SAMPLE["answer_tokens"],
    }


def flops() -> dict[str, float]:
    p, n, t = parameters(), tokens(), TEXT
    tower_positions_padded = AUDIO["positions"]  # the stock tower always runs on 30 s
    tower_positions_trimmed = n["mel_frames"] // 2 + 4  # apa runs it on the audio's frames
    tower_per_position = 2 * p["audio_tower"]
    lm = 2 * p["language_model_layers"] * n["sequence"] + 4 * n["sequence"] ** 2 * t["hidden"] * t["layers"]
    head_all = 2 * t["vocab"] * t["hidden"] * n["sequence"]  # the stock forward: logits at every position
    head_answer = 2 * t["vocab"] * t["hidden"] * SAMPLE["answer_tokens"]  # apa: only where there are labels
    return {
        "tower_forward_stock": tower_per_position * tower_positions_padded,
        "tower_forward_trimmed": tower_per_position * tower_positions_trimmed,
        "lm_forward": lm,
        "head_forward_stock": head_all,
        "head_forward_answer_only": head_answer,
        "training_sample_stock": tower_per_position * tower_positions_padded + 3 * (lm + head_all),
        "training_sample_apa_cached_tower": 3 * (lm + head_answer),  # checkpointing: forward, recompute, backward
        "inference_sample_prefill": tower_per_position * tower_positions_trimmed + lm + 2 * t["vocab"] * t["hidden"],
    }


def memory_gb() -> dict[str, float]:
    p, n, t = parameters(), tokens(), TEXT
    weights = sum(p.values()) * 2  # bf16
    adapter = lora_parameters() * (4 + 4 + 8)  # fp32 weights, gradients, Adam's two moments
    checkpoints = t["layers"] * n["sequence"] * t["hidden"] * 2  # each layer's input, bf16
    one_layer = n["sequence"] * (6 * t["hidden"] + 3 * t["ffn"]) * 2  # recomputed layer's activations
    logits = SAMPLE["answer_tokens"] * t["vocab"] * 4 * 2  # fp32 logits and their gradient
    runtime = 1.5 * GB  # CUDA context and allocator slack
    return {
        "weights_bf16": weights / GB,
        "lora_and_optimizer": adapter / GB,
        "activations_checkpointed": (checkpoints + one_layer) / GB,
        "logits": logits / GB,
        "runtime_overhead": runtime / GB,
        "total_batch1_bf16_checkpointing": (weights + adapter + checkpoints + one_layer + logits + runtime) / GB,
    }


def benchmark() -> dict:
    f, m = flops(), memory_gb()
    return {
        "paper_7b_parameters_billions": sum(parameters().values()) / 1e9,
        "paper_7b_lora_parameters_millions": lora_parameters() / 1e6,
        "paper_7b_sequence_tokens": tokens()["sequence"],
        **{f"paper_7b_tflops_{k}": v / 1e12 for k, v in f.items()},
        **{f"paper_7b_memory_gb_{k}": v for k, v in m.items()},
        "paper_7b_fits_24gb": m["total_batch1_bf16_checkpointing"] < 24,
    }
