"""Qwen2-Audio's forward pass, opened up: each audio is encoded once, however many sequences use it.

``Qwen2AudioForConditionalGeneration.forward`` runs the audio tower once per row and computes
logits over the whole 156k vocabulary at every position. Objectives need less and more: a
chosen and a rejected answer share one audio encoding (SimPO), and most objectives read a few
positions only. :func:`hidden_states` runs the tower once per audio, scatters the projected frames
into every row that refers to that audio, and returns the language model's last hidden states;
the caller applies the LM head where it needs logits. A test checks it against the stock forward.
"""

from __future__ import annotations

import torch
from peft import PeftModel
from torch import nn
from transformers import Qwen2AudioForConditionalGeneration
from transformers.masking_utils import create_bidirectional_mask


def qwen2_audio(model: nn.Module) -> Qwen2AudioForConditionalGeneration:
    """The Qwen2-Audio model inside a PEFT wrapper (or the model itself)."""
    return model.get_base_model() if isinstance(model, PeftModel) else model


def encode_audio(model: nn.Module, input_features: torch.Tensor, feature_attention_mask: torch.Tensor):
    """Projected audio frames of each audio, as a list of (frames, hidden) tensors."""
    core = qwen2_audio(model).model
    tower = core.audio_tower
    input_features = input_features.to(tower.conv1.weight.device, tower.conv1.weight.dtype)
    feature_lengths, output_lengths = tower._get_feat_extract_output_lengths(feature_attention_mask.sum(-1))
    frames = (input_features.shape[-1] - 2) // 2 + 1
    valid = torch.arange(frames, device=feature_lengths.device)[None, :] < feature_lengths[:, None]
    mask = create_bidirectional_mask(
        config=tower.config,
        inputs_embeds=torch.zeros(len(input_features), frames, 1, dtype=input_features.dtype, device=valid.device),
        attention_mask=valid.long(),
    )
    projected = core.multi_modal_projector(tower(input_features, attention_mask=mask).last_hidden_state)
    return [row[:length] for row, length in zip(projected, output_lengths.tolist(), strict=True)]


def embed(model: nn.Module, input_ids: torch.Tensor, audio: list[torch.Tensor], audio_index: torch.Tensor):
    """Token embeddings with each row's audio placeholders replaced by its audio's frames."""
    embeddings = model.get_input_embeddings()(input_ids)
    is_audio = input_ids == qwen2_audio(model).config.audio_token_id
    if not is_audio.any():  # a continuation after the prompt
        return embeddings
    frames = torch.cat([audio[i] for i in audio_index.tolist()]).to(embeddings.dtype)
    if int(is_audio.sum()) != len(frames):
        raise ValueError(f"{int(is_audio.sum())} audio placeholders for {len(frames)} audio frames in the batch")
    return embeddings.masked_scatter(is_audio[..., None], frames)


def hidden_states(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Last hidden states (rows, length, hidden) of ``batch``: ``input_ids``, ``attention_mask``,
    ``input_features`` and ``feature_attention_mask`` (one per audio), ``audio_index`` (row -> audio)."""
    audio = encode_audio(model, batch["input_features"], batch["feature_attention_mask"])
    embeddings = embed(model, batch["input_ids"], audio, batch["audio_index"])
    language_model = qwen2_audio(model).model.language_model
    return language_model(inputs_embeds=embeddings, attention_mask=batch["attention_mask"]).last_hidden_state


def logits(model: nn.Module, hidden: torch.Tensor) -> torch.Tensor:
    """LM-head logits for the given hidden states (any leading shape)."""
    return model.get_output_embeddings()(hidden)


def slot_hidden(hidden: torch.Tensor, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Hidden states that predict each slot (the position before it), and the valid-slot mask."""
    valid = batch["slot_valid"]
    rows = torch.arange(len(hidden), device=hidden.device)[:, None].expand_as(valid)
    return hidden[rows[valid], batch["slot_positions"][valid] - 1], valid
