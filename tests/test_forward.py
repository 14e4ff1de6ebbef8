"""Real audio through the processor and a forward/backward pass of the tiny model with labels."""

import math

import pytest
import torch

HOP_LENGTH = 160  # Whisper features: one mel frame per 10 ms


def audio_tokens_for(mel_frames: int) -> int:
    """Qwen2-Audio's audio tokens for ``mel_frames`` frames (two stride-2 reductions)."""
    return ((mel_frames - 1) // 2 + 1 - 2) // 2 + 1


def test_processor_expands_audio_tokens(tiny, labelled_batch):
    _, processor = tiny
    audio, inputs = labelled_batch
    assert inputs["input_features"].shape == (1, 128, 3000)  # always 30 s
    mel_frames = int(inputs["feature_attention_mask"].sum())
    assert mel_frames == math.ceil(len(audio) / HOP_LENGTH)
    n_audio = int((inputs["input_ids"] == processor.tokenizer.convert_tokens_to_ids("<|AUDIO|>")).sum())
    assert n_audio == audio_tokens_for(mel_frames) > 0


def test_forward_backward_with_labels(tiny, labelled_batch):
    model, _ = tiny
    _, inputs = labelled_batch
    output = model(**inputs)
    n_answer = int((inputs["labels"] != -100).sum())
    assert output.logits.shape == (*inputs["input_ids"].shape, model.config.text_config.vocab_size)
    assert 0 < n_answer < inputs["input_ids"].shape[1]
    # an untrained model is close to uniform over the vocabulary
    assert output.loss.item() == pytest.approx(math.log(model.config.text_config.vocab_size), abs=1.0)
    output.loss.backward()
    tower_grad = model.model.audio_tower.conv1.weight.grad
    assert tower_grad is not None and tower_grad.abs().sum() > 0  # the answer depends on the audio
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
