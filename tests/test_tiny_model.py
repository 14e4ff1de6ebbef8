"""The tiny model: real architecture, deterministic from its seed, reloaded offline."""

import hashlib

import pytest
import torch
from safetensors.torch import load_file
from transformers import Qwen2AudioForConditionalGeneration, Qwen2AudioProcessor

from apa.models.offline import TinyQwen2Audio


def weights_digest(folder):
    state = load_file(folder / "model.safetensors")
    digest = hashlib.sha256()
    for name in sorted(state):
        digest.update(name.encode())
        digest.update(state[name].numpy().tobytes())
    return digest.hexdigest()


def test_build_is_deterministic_and_seeded(tmp_path):
    torch.manual_seed(123)
    callers_state = torch.random.get_rng_state()
    first = TinyQwen2Audio(cache_dir=str(tmp_path / "a")).build()
    assert torch.equal(torch.random.get_rng_state(), callers_state)  # a run that builds trains like one that loads
    second = TinyQwen2Audio(cache_dir=str(tmp_path / "b")).build()
    other_seed = TinyQwen2Audio(cache_dir=str(tmp_path / "c"), seed=1).build()
    assert weights_digest(first) == weights_digest(second)
    assert weights_digest(first) != weights_digest(other_seed)
    assert first.name == second.name != other_seed.name  # the folder is named by the architecture


def test_build_reuses_a_finished_folder(tiny_source):
    stamp = (tiny_source.path / "model.safetensors").stat().st_mtime_ns
    assert tiny_source.build() == tiny_source.path
    assert (tiny_source.path / "model.safetensors").stat().st_mtime_ns == stamp
    assert not list(tiny_source.path.parent.glob(".building-*"))


def test_reload_offline_has_the_real_architecture(tiny_source, tiny):
    model, processor = tiny
    assert type(model) is Qwen2AudioForConditionalGeneration
    assert type(processor) is Qwen2AudioProcessor
    config = model.config
    assert config.audio_config.num_mel_bins == processor.feature_extractor.feature_size == 128
    assert config.audio_config.encoder_layers == config.text_config.num_hidden_layers == 2
    assert config.text_config.vocab_size == 156032
    assert config.audio_token_id == processor.tokenizer.convert_tokens_to_ids("<|AUDIO|>") == 151646
    assert not config.text_config.tie_word_embeddings
    assert model.generation_config.eos_token_id == [151643, 151645]
    assert model.dtype == torch.float32
    assert all(not p.is_meta for p in model.parameters())
    # the reloaded weights are the saved ones, bit for bit
    saved = load_file(tiny_source.path / "model.safetensors")
    for name, tensor in model.state_dict().items():
        if name in saved:
            assert torch.equal(tensor, saved[name]), name


def test_processor_round_trips_the_chat_template(tiny):
    _, processor = tiny
    assert "Audio {{ audio_count.value }}" in processor.chat_template


@pytest.mark.parametrize("field", ["seed", "text_layers", "audio_hidden_size"])
def test_fingerprint_changes_with_architecture(tmp_path, field):
    base = TinyQwen2Audio(cache_dir=str(tmp_path))
    changed = TinyQwen2Audio(cache_dir=str(tmp_path), **{field: getattr(base, field) + 1})
    assert base.path != changed.path
    assert base.path == TinyQwen2Audio(cache_dir=str(tmp_path), dtype="bfloat16").path


def test_attention_implementation_is_passed_to_the_loaded_model(tiny_source):
    eager = TinyQwen2Audio(cache_dir=tiny_source.cache_dir, attn_implementation="eager")
    assert eager.path == tiny_source.path  # how attention runs does not change the weights
    model, _ = eager.load()
    assert model.config.text_config._attn_implementation == "eager"
