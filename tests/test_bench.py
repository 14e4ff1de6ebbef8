"""The benchmark harness: the 7B arithmetic, the report it rewrites, and (slow) a quick run."""

import json

import pytest

from bench import paper_7b
from bench.common import replace_section
from bench.run import table, update_report

START, END = "<!-- speed:start -->", "<!-- speed:end -->"


def test_qwen2_audio_7b_on_paper():
    results = paper_7b.benchmark()
    assert 8.0 < results["paper_7b_parameters_billions"] < 8.6  # Qwen2-Audio-7B: 8.4B with its audio tower
    assert 19 < results["paper_7b_lora_parameters_millions"] < 21  # r=8 on all 7 projections of 32 layers
    assert results["paper_7b_memory_gb_weights_bf16"] == pytest.approx(2 * results["paper_7b_parameters_billions"])
    assert results["paper_7b_fits_24gb"]  # as Wang et al. trained on an RTX 4090
    assert results["paper_7b_tflops_tower_forward_stock"] > 5 * results["paper_7b_tflops_tower_forward_trimmed"]
    assert (
        results["paper_7b_tflops_training_sample_apa_cached_tower"] < results["paper_7b_tflops_training_sample_stock"]
    )


def test_report_section_is_replaced_and_the_rest_kept(tmp_path, monkeypatch):
    report = tmp_path / "BENCHMARKS.md"
    report.write_text(f"# Benchmarks\n\nReal-data table stays.\n\n{START}\nold numbers\n{END}\n\nFooter stays.\n")
    import bench.run

    monkeypatch.setattr(bench.run, "table", lambda results: "| new | table |")
    results = {
        "mode": "quick",
        "machine": {"cpu": "CPU", "cores": 2, "torch": "2.13", "torch_threads": 2, "python": "3.11"},
    }
    update_report(results, "make bench-quick", report)
    text = report.read_text()
    assert "Real-data table stays." in text and "Footer stays." in text and "old numbers" not in text
    assert "| new | table |" in text and "`make bench-quick` (quick mode)" in text
    assert text.count(START) == text.count(END) == 1


def test_a_missing_section_is_appended_and_rewritten_in_place(tmp_path):
    report = tmp_path / "BENCHMARKS.md"
    report.write_text("# Benchmarks\n\nIntro.\n")
    replace_section(report, "real-data", "| first |")
    replace_section(report, "real-data", "| second |\n")
    assert (
        report.read_text() == "# Benchmarks\n\nIntro.\n\n<!-- real-data:start -->\n| second |\n<!-- real-data:end -->\n"
    )


def test_only_re_measures_the_named_benchmarks_and_keeps_the_others(monkeypatch):
    import bench.run

    calls = []

    def fake(name, model, cache_dir, settings):
        calls.append((name, model))
        return {f"{name}_number": 2.0}

    monkeypatch.setattr(bench.run, "measure_model", fake)
    previous = {
        "mode": "quick",
        "scoring_number": 1.0,
        "tiny_scoring_number": 1.0,
        "measured": {"scoring": "2026-11-22"},
    }
    results = bench.run.run("quick", "cache", only=("utilisation",), previous=previous)
    assert calls == [("utilisation", "tiny")]
    assert results["tiny_utilisation_number"] == results["utilisation_number"] == 2.0
    assert results["scoring_number"] == results["tiny_scoring_number"] == 1.0  # kept, not measured again
    assert results["measured"]["scoring"] == "2026-11-22" and results["measured"]["utilisation"] != "2026-11-22"
    with pytest.raises(ValueError, match="full mode"):
        bench.run.run("quick", "cache", only=("utilisation",), previous={**previous, "mode": "full"})


@pytest.mark.slow
def test_quick_benchmark_runs(tmp_path, apa_cache):
    from bench.run import main

    results, report = tmp_path / "results.json", tmp_path / "BENCHMARKS.md"
    main(["--quick", "--cache-dir", str(apa_cache), "--results", str(results), "--report", str(report)])
    numbers = json.loads(results.read_text())
    for name in ("scoring_multi_slot_vs_generate_speedup", "training_vs_trl_sft_speedup", "cache_tower_epoch_speedup"):
        assert numbers[name] > 0, name
    for name in ("training_mfu", "slot_decoding_mfu", "generation_mfu"):
        assert 0 < numbers[name] < 1, name  # a share of the peak measured in the same run
    assert numbers["peak_bf16_flops"] > 0 and numbers["peak_fp32_flops"] > 0
    assert numbers["scoring_multi_slot_unparseable_rate"] == 0.0
    assert START in report.read_text() and "| measurement | tiny |" in report.read_text()
    assert table(numbers) in report.read_text()  # the report shows the very numbers results.json holds


def test_generation_benchmark_times_both_paths_on_the_same_tokens(apa_cache, speechocean762):
    from bench.generation import benchmark

    overrides = ["model=tiny", f"data.root={speechocean762}", f"paths.cache_dir={apa_cache}"]
    (row,) = benchmark(overrides, utterances=3, tokens=[4], batch_sizes=[2], repeats=1)
    assert (row["tokens"], row["batch_size"], row["utterances"]) == (4, 2, 3)
    assert row["same_tokens"]  # the two paths generate the same greedy tokens
    assert row["stock_seconds_per_utterance"] > 0 and row["apa_seconds_per_utterance"] > 0
    assert row["speedup"] == pytest.approx(row["stock_seconds_per_utterance"] / row["apa_seconds_per_utterance"])
