"""bench.gpu_check: skips cleanly without CUDA, builds 7B's shape, and runs its code at tiny size on CPU."""

import torch

from bench import gpu_check


def test_without_cuda_it_says_so_and_measures_nothing(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(gpu_check, "check", lambda *args: (_ for _ in ()).throw(AssertionError("measured")))
    assert gpu_check.main(["--size", "7b"]) == 0
    assert "skipped, no CUDA device" in capsys.readouterr().out


def test_the_7b_shape_is_qwen2_audio_7b_instructs(apa_cache):
    """Published widths: 8.4 billion parameters (built on the meta device: no memory)."""
    from transformers import Qwen2AudioForConditionalGeneration

    config = gpu_check.config_of("7b", str(apa_cache))
    text, audio = config.text_config, config.audio_config
    assert (text.hidden_size, text.intermediate_size, text.num_hidden_layers) == (4096, 11008, 32)
    assert (text.num_attention_heads, text.num_key_value_heads, text.vocab_size) == (32, 32, 156032)
    assert (audio.d_model, audio.encoder_ffn_dim, audio.encoder_layers, audio.encoder_attention_heads) == (
        1280,
        5120,
        32,
        20,
    )
    with torch.device("meta"):
        model = Qwen2AudioForConditionalGeneration(config)
    assert 8.3e9 < sum(p.numel() for p in model.parameters()) < 8.5e9


def test_the_same_code_runs_at_tiny_size_on_cpu(apa_cache):
    results = gpu_check.check("tiny", "cpu", repeats=1, cache_dir=str(apa_cache))
    assert results["device"] == "cpu" and results["size"] == "tiny"
    assert results["training_step_tokens"] > 4 * 100  # four utterances of six words with the multi answer
    assert results["training_tokens_per_second"] > 0 and results["training_mfu_measured_peak"] > 0
    assert results["training_mfu_datasheet"] is None and results["training_peak_memory_bytes"] is None
    for name in ("slot_decoding", "slot_decoding_bf16", "generation"):
        assert results[f"{name}_flops_per_utterance"] > 0 and results[f"{name}_seconds_per_utterance"] > 0
