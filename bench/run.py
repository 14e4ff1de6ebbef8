"""Run the benchmarks: ``python -m bench.run [--quick]`` (``make bench`` / ``make bench-quick``).

Prints a table, writes ``bench/results.json`` (flat names to numbers) and rewrites the speed
section of ``BENCHMARKS.md`` with the machine, the command and the numbers. Every timing is the
median of repeated runs in this process (spread in the JSON); speed-ups are ratios measured in
the same run, never absolute claims.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from datetime import date
from pathlib import Path

from bench import caches, paper_7b, scoring
from bench.common import ROOT, child, machine, measure, replace_section

RESULTS = ROOT / "bench" / "results.json"
REPORT = ROOT / "BENCHMARKS.md"
SECTION = "speed"  # <!-- speed:start --> ... <!-- speed:end --> in BENCHMARKS.md
MODES = {
    "quick": dict(models=("tiny",), utterances=16, batch_size=4, steps=6, repeats=2, train_utterances=24),
    "full": dict(models=("tiny", "mini"), utterances=40, batch_size=8, steps=10, repeats=3, train_utterances=64),
}


def training_comparison(model: str, cache_dir: str, settings: dict) -> dict:
    arguments = [
        "--model",
        model,
        "--cache-dir",
        cache_dir,
        "--utterances",
        str(settings["train_utterances"]),
        "--batch-size",
        str(settings["batch_size"]),
        "--steps",
        str(settings["steps"]),
    ]
    results = {}
    for system in ("ours", "trl"):
        child("bench.training", system, "--output-dir", tempfile.mkdtemp(), *arguments)  # warm caches and files
        results[system] = measure(
            lambda system=system: child("bench.training", system, "--output-dir", tempfile.mkdtemp(), *arguments),
            settings["repeats"],
        )
    ours, trl = results["ours"], results["trl"]
    return {
        "training_ours_samples_per_second": ours["samples_per_second"]["median"],
        "training_trl_sft_samples_per_second": trl["samples_per_second"]["median"],
        "training_vs_trl_sft_speedup": ours["samples_per_second"]["median"] / trl["samples_per_second"]["median"],
        "training_ours_peak_rss_gb": ours["peak_rss_bytes"]["median"] / 1e9,
        "training_trl_sft_peak_rss_gb": trl["peak_rss_bytes"]["median"] / 1e9,
        "training_vs_trl_sft_peak_rss_ratio": ours["peak_rss_bytes"]["median"] / trl["peak_rss_bytes"]["median"],
        "training_samples_per_second_spread": {s: results[s]["samples_per_second"] for s in results},
    }


BENCHMARKS = ("utilisation", "scoring", "training", "caches")


def measure_model(name: str, model: str, cache_dir: str, settings: dict) -> dict:
    """One benchmark's numbers on one model."""
    size, batch, repeats = settings["utterances"], settings["batch_size"], settings["repeats"]
    if name == "utilisation":  # a fresh process: its peak memory and threads are its own
        return child("bench.utilisation", "--model", model, "--cache-dir", cache_dir, "--repeats", "3")
    if name == "scoring":
        return scoring.benchmark(model, cache_dir, size, batch, repeats)
    if name == "training":
        return training_comparison(model, cache_dir, settings)
    return caches.benchmark(model, cache_dir, settings["train_utterances"], batch, repeats)


def run(mode: str, cache_dir: str, only: tuple[str, ...] = BENCHMARKS, previous: dict | None = None) -> dict:
    """Every benchmark of ``mode`` on each of its models; with ``only``, just those, the other
    numbers kept from ``previous`` (results.json of the same mode), each benchmark with its date."""
    settings = MODES[mode]
    if previous and previous.get("mode") != mode:
        raise ValueError(f"{RESULTS.name} holds {previous.get('mode')} mode; --only re-measures within one mode")
    results = {**(previous or {}), "mode": mode, "models": list(settings["models"]), "machine": machine()}
    results |= paper_7b.benchmark()
    dated = dict(results.get("measured", {}))
    for model in settings["models"]:
        measured = {}
        for name in only:
            measured |= measure_model(name, model, cache_dir, settings)
        results |= {f"{model}_{name}": value for name, value in measured.items()}
        results |= measured  # the last (largest) model's numbers under the plain names
    results["measured"] = dated | {name: str(date.today()) for name in only}
    return results


MEASURED = [  # (label, key in results.json without the model prefix, unit)
    ("scoring `multi`: slot decoding vs generation (speed-up)", "scoring_multi_slot_vs_generate_speedup", "x"),
    ("scoring `multi`: left-to-right slots vs generation", "scoring_multi_slot_left_to_right_vs_generate_speedup", "x"),
    ("scoring `sentence`: slot decoding vs generation", "scoring_sentence_slot_vs_generate_speedup", "x"),
    ("scoring `multi`: slot decoding, utterances/s", "scoring_multi_slot_utterances_per_second", ""),
    ("scoring `multi`: generation, utterances/s", "scoring_multi_generate_utterances_per_second", ""),
    ("unparseable answers, slot decoding (`multi`)", "scoring_multi_slot_unparseable_rate", ""),
    ("unparseable answers, generation (`multi`)", "scoring_multi_generate_unparseable_rate", ""),
    ("training: apa vs TRL SFTTrainer (speed-up)", "training_vs_trl_sft_speedup", "x"),
    ("training: apa samples/s", "training_ours_samples_per_second", ""),
    ("training: TRL SFTTrainer samples/s", "training_trl_sft_samples_per_second", ""),
    ("training: peak RSS apa / TRL", "training_vs_trl_sft_peak_rss_ratio", ""),
    ("caches: features, build s/utterance", "cache_features_build_seconds_per_utterance", ""),
    ("caches: audio tower, build s/utterance", "cache_tower_build_seconds_per_utterance", ""),
    ("caches: epoch 1 s", "cache_epoch1_seconds", ""),
    ("caches: epoch 2 s", "cache_epoch2_seconds", ""),
    ("caches: epoch with tower cache vs without (speed-up)", "cache_tower_epoch_speedup", "x"),
]
UTILISATION = [  # (label, key, scale, unit): model FLOPs counted as the work runs / its time / the peak
    ("peak matrix products, fp32 (GFLOP/s)", "peak_fp32_flops", 1e-9, ""),
    ("peak matrix products, bf16 (GFLOP/s)", "peak_bf16_flops", 1e-9, ""),
    ("training micro-batch of 4: model GFLOPs (forward + backward)", "training_step_model_flops", 1e-9, ""),
    ("training micro-batch of 4: tokens", "training_step_tokens", 1, ""),
    ("training MFU (bf16 autocast, against the bf16 peak)", "training_mfu", 100, "%"),
    ("slot decoding MFU (fp32, as evaluate.py)", "slot_decoding_mfu", 100, "%"),
    ("slot decoding MFU (bf16 autocast, the dev split)", "slot_decoding_bf16_mfu", 100, "%"),
    ("generation MFU (fp32)", "generation_mfu", 100, "%"),
    ("step time: collating (s)", "training_seconds_data", 1, ""),
    ("step time: forward (s)", "training_seconds_forward", 1, ""),
    ("step time: backward (s)", "training_seconds_backward", 1, ""),
    ("step time: optimizer (s)", "training_seconds_optimizer", 1, ""),
    ("step time: total (s)", "training_seconds_total", 1, ""),
    ("with activation checkpointing: total (s)", "training_checkpointed_seconds_total", 1, ""),
    ("with activation checkpointing: recomputation (s)", "training_recompute_seconds", 1, ""),
]
PAPER_7B = [
    (
        "parameters (billions) / LoRA r=8 (millions)",
        "paper_7b_parameters_billions",
        "paper_7b_lora_parameters_millions",
    ),
    (
        "TFLOPs per training sample: stock / apa (cached tower)",
        "paper_7b_tflops_training_sample_stock",
        "paper_7b_tflops_training_sample_apa_cached_tower",
    ),
    (
        "GB at batch 1, bf16, gradient checkpointing (fits 24 GB?)",
        "paper_7b_memory_gb_total_batch1_bf16_checkpointing",
        "paper_7b_fits_24gb",
    ),
]


def table(results: dict) -> str:
    """One column per benchmarked model, then the 7B worked out on paper."""
    models = results["models"]
    lines = [f"| measurement | {' | '.join(models)} |", "|---|" + "---|" * len(models)]
    lines += [model_row(results, models, label, key, unit) for label, key, unit in MEASURED]
    speech = "real speechocean762" if all(results[f"{m}_utilisation_real_speech"] for m in models) else "synthetic"
    lines += ["", f"| utilisation, {speech} utterances | {' | '.join(models)} |"]
    lines.append("|---|" + "---|" * len(models))
    lines += [model_row(results, models, label, key, unit, scale) for label, key, scale, unit in UTILISATION]
    largest = [results[f"{m}_training_largest_operators"] for m in models]
    shares = [", ".join(f"`{op}` {share:.0%}" for op, share in ops.items()) for ops in largest]
    lines.append("| largest operators of a step (share of its time) | " + " | ".join(shares) + " |")
    lines += ["", "| Qwen2-Audio-7B-Instruct with LoRA, on paper | value |", "|---|---|"]
    for label, first, second in PAPER_7B:
        lines.append(f"| {label} | {cell(results[first])} / {cell(results[second])} |")
    return "\n".join(lines)


def model_row(results: dict, models: list[str], label: str, key: str, unit: str, scale: float = 1) -> str:
    """One table row: ``key`` of each model, times ``scale``, in ``unit``."""
    return f"| {label} | " + " | ".join(f"{results[f'{m}_{key}'] * scale:.3g}{unit}" for m in models) + " |"


def cell(value: float | bool) -> str:
    return ("yes" if value else "no") if isinstance(value, bool) else f"{value:.3g}"


def update_report(results: dict, command: str, report: Path = REPORT) -> None:
    m = results["machine"]
    dates = results.get("measured", {})
    when = f"on {date.today()}"
    if len(set(dates.values())) > 1:  # re-measured with --only: each benchmark's own date
        when = "(" + "; ".join(f"{name} on {day}" for name, day in dates.items()) + ")"
    section = "\n".join(
        [
            f"Measured {when}, last with `{command}` ({results['mode']} mode) on {m['cpu']}, "
            f"{m['cores']} cores, torch {m['torch']} ({m['torch_threads']} threads), Python {m['python']}; "
            "medians of repeated runs, spreads in `bench/results.json`.",
            "",
            table(results),
        ]
    )
    replace_section(report, SECTION, section)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.run")
    parser.add_argument("--quick", action="store_true", help="CI-sized: the tiny model, few utterances and repeats")
    parser.add_argument("--cache-dir", default=str(Path("~/.cache/apa").expanduser()))
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--report", type=Path, default=REPORT)
    parser.add_argument("--only", nargs="+", choices=BENCHMARKS, help="re-measure these; keep the rest of --results")
    args = parser.parse_args(argv)
    mode = "quick" if args.quick else "full"
    previous = json.loads(args.results.read_text()) if args.only and args.results.is_file() else None
    results = run(mode, args.cache_dir, tuple(args.only or BENCHMARKS), previous)
    args.results.write_text(json.dumps(results, indent=1) + "\n")
    command = "make bench-quick" if args.quick else "make bench"
    if args.only:
        command = f"python -m bench.run {'--quick ' if args.quick else ''}--only {' '.join(args.only)}"
    update_report(results, command, args.report)
    print(table(results))


if __name__ == "__main__":
    main()
