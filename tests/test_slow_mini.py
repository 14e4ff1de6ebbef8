"""Slow: the mini model is assembled from real pretrained weights, correctly."""

import subprocess

import pytest
import torch
from transformers import (
    PreTrainedTokenizerFast,
    WhisperConfig,
    WhisperFeatureExtractor,
    WhisperForConditionalGeneration,
)

from apa.data.audio import load_audio
from apa.models.offline import MiniQwen2Audio
from apa.models.offline.mini import WHISPER_PARTS, package_file, smollm2, whisper_base_arrays
from apa.models.offline.whisper_ct2 import decoder_state, encoder_state

pytestmark = pytest.mark.slow

SENTENCE = "The quick brown fox jumps over the lazy dog."


@pytest.fixture(scope="module")
def mini(apa_cache):
    return MiniQwen2Audio(cache_dir=str(apa_cache / "models")).load()


def whisper_base() -> WhisperForConditionalGeneration:
    config = WhisperConfig(
        vocab_size=51865,
        num_mel_bins=80,
        d_model=512,
        encoder_layers=6,
        decoder_layers=6,
        encoder_attention_heads=8,
        decoder_attention_heads=8,
        encoder_ffn_dim=2048,
        decoder_ffn_dim=2048,
        max_source_positions=1500,
        max_target_positions=448,
    )
    model = WhisperForConditionalGeneration(config)
    arrays = whisper_base_arrays()
    model.model.encoder.load_state_dict(encoder_state(arrays), strict=True)
    model.model.decoder.load_state_dict(decoder_state(arrays), strict=True)
    model.proj_out.weight = model.model.decoder.embed_tokens.weight
    return model.eval()


def test_converted_whisper_transcribes_espeak(tmp_path):
    """Whisper-base read from the CTranslate2 file, decoder included, hears an espeak-ng sentence."""
    wav = tmp_path / "fox.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(wav), SENTENCE], check=True)
    features = WhisperFeatureExtractor(feature_size=80)(load_audio(wav), sampling_rate=16000, return_tensors="pt")
    tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(package_file(*WHISPER_PARTS[0]).parent / "tokenizer.json"))
    prompt = tokenizer.convert_tokens_to_ids(["<|startoftranscript|>", "<|en|>", "<|transcribe|>", "<|notimestamps|>"])
    model, ids = whisper_base(), torch.tensor([prompt])
    with torch.no_grad():
        encoded = model.model.encoder(features.input_features).last_hidden_state
        for _ in range(30):
            step = model(encoder_outputs=(encoded,), decoder_input_ids=ids).logits[0, -1].argmax()
            ids = torch.cat([ids, step.view(1, 1)], dim=1)
            if step == tokenizer.convert_tokens_to_ids("<|endoftext|>"):
                break
    heard = tokenizer.decode(ids[0, len(prompt) :], skip_special_tokens=True).lower()
    expected = {"quick", "brown", "fox", "lazy", "dog"}
    assert len(expected & set(heard.replace(".", " ").replace(",", " ").split())) >= 4, heard


def test_language_model_reproduces_the_gguf_logits(mini):
    model, processor = mini
    reference, tokenizer = smollm2()
    ids = tokenizer("Pronunciation is the way a word is spoken.", return_tensors="pt")["input_ids"]
    assert ids.tolist() == processor.tokenizer(tokenizer.decode(ids[0]), return_tensors="pt")["input_ids"].tolist()
    with torch.no_grad():
        expected = reference(input_ids=ids).logits
        hidden = model.model.language_model(input_ids=ids).last_hidden_state
        got = model.lm_head(hidden)
    assert got.shape[-1] == expected.shape[-1] + 3  # the audio tokens
    assert torch.allclose(got[..., : expected.shape[-1]], expected, atol=1e-4)


def test_mini_is_a_qwen2_audio_with_whisper_base_and_smollm2(mini):
    model, processor = mini
    assert model.config.audio_config.num_mel_bins == processor.feature_extractor.feature_size == 80
    assert model.config.audio_config.d_model == 512 and model.config.text_config.hidden_size == 576
    assert model.config.text_config.model_type == "llama" and not model.config.text_config.tie_word_embeddings
    assert processor.tokenizer.convert_tokens_to_ids("<|AUDIO|>") == model.config.audio_token_id
    chat = processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "audio", "audio": "x"}]}], add_generation_prompt=True, tokenize=False
    )
    assert "<|audio_bos|><|AUDIO|><|audio_eos|>" in chat and chat.endswith("<|im_start|>assistant\n")


@pytest.mark.parametrize("objective", ["fa", "regression"])
def test_the_real_data_preset_runs_a_step(tmp_path, speechocean762, objective):
    """One step of experiment=mini_speechocean762 on a slice: the preset composes, trains, scores."""
    from .helpers import launch, only_run_dir

    overrides = [
        "experiment=mini_speechocean762",
        f"objective={objective}",
        f"data.root={speechocean762}",
        "limit=8",
        "trainer.arguments.max_steps=1",
        "trainer.arguments.per_device_train_batch_size=4",
        "logger=none",
        "bootstrap_resamples=20",
    ]
    result = launch("train.py", *overrides, outputs=tmp_path / "outputs")
    assert result.returncode == 0, result.stderr
    report = (only_run_dir(tmp_path / "outputs", "mini_speechocean762") / "metrics.json").read_text()
    assert '"sentence/total/n": 8' in report
