"""Qwen2-Audio's forward pass, opened up: each audio is encoded once, however many sequences use it.

``Qwen2AudioForConditionalGeneration.forward`` runs the audio tower once per row and computes
logits over the whole 156k vocabulary at every position. Objectives need less and more: a
chosen and a rejected answer share one audio encoding (SimPO), and most objectives read a few
positions only. :func:`hidden_states` runs the tower once per audio, scatters the projected frames
into every row that refers to that audio, and returns the language model's last hidden states;
the caller applies the LM head where it needs logits. A test checks it against the stock forward.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from peft import PeftModel
from torch import nn
from transformers import AutoModelForCausalLM, GenerationMixin, Qwen2AudioForConditionalGeneration
from transformers.masking_utils import create_bidirectional_mask


def qwen2_audio(model: nn.Module) -> Qwen2AudioForConditionalGeneration:
    """The Qwen2-Audio model inside a PEFT wrapper (or the model itself)."""
    return model.get_base_model() if isinstance(model, PeftModel) else model


FRAME_MARGIN = 8  # feature frames kept past the audio, so the convolutions at its end see what they see in 30 s


def tower_states(tower: nn.Module, input_features: torch.Tensor, feature_attention_mask: torch.Tensor):
    """The audio tower's output frames (batch, frames, d_model) and how many of each row are audio.

    The stock tower always runs on 30 s (3,000 feature frames) and masks the padding; the frames
    after the audio cannot change the outputs that are kept, so this runs the same layers on the
    audio's frames (plus a small margin) only: same result, up to 10x less work for short clips.
    """
    input_features = input_features.to(tower.conv1.weight.device, tower.conv1.weight.dtype)
    mel_lengths = feature_attention_mask.sum(-1)
    feature_lengths, output_lengths = tower._get_feat_extract_output_lengths(mel_lengths)
    keep = min(input_features.shape[-1], 4 * math.ceil((int(mel_lengths.max()) + FRAME_MARGIN) / 4))
    hidden = F.gelu(tower.conv1(input_features[..., :keep]))
    hidden = F.gelu(tower.conv2(hidden)).permute(0, 2, 1)
    hidden = hidden + tower.embed_positions.weight[: hidden.shape[1]]
    hidden = F.dropout(hidden, p=tower.dropout, training=tower.training)
    valid = torch.arange(hidden.shape[1], device=hidden.device)[None, :] < feature_lengths.to(hidden.device)[:, None]
    mask = create_bidirectional_mask(config=tower.config, inputs_embeds=hidden, attention_mask=valid.long())
    for layer in tower.layers:
        hidden = layer(hidden, mask)
    hidden = tower.avg_pooler(hidden.permute(0, 2, 1)).permute(0, 2, 1)
    return tower.layer_norm(hidden), output_lengths.tolist()


def encode_audio(model: nn.Module, input_features: torch.Tensor, feature_attention_mask: torch.Tensor):
    """Projected audio frames of each audio, as a list of (frames, hidden) tensors."""
    core = qwen2_audio(model).model
    states, lengths = tower_states(core.audio_tower, input_features, feature_attention_mask)
    projected = core.multi_modal_projector(states)
    return [row[:length] for row, length in zip(projected, lengths, strict=True)]


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


def audio_embeddings(model: nn.Module, batch: dict[str, torch.Tensor]) -> list[torch.Tensor]:
    """Each audio's projected frames: from its features, or from cached tower outputs
    (``audio_states`` and ``audio_lengths``), which only the projector still has to map."""
    if "audio_states" not in batch:
        return encode_audio(model, batch["input_features"], batch["feature_attention_mask"])
    projector = qwen2_audio(model).model.multi_modal_projector
    projected = projector(batch["audio_states"].to(projector.linear.weight.dtype))
    return [row[:length] for row, length in zip(projected, batch["audio_lengths"].tolist(), strict=True)]


def hidden_states(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Last hidden states (rows, length, hidden) of ``batch``: ``input_ids``, ``attention_mask``,
    ``input_features`` and ``feature_attention_mask`` (or ``audio_states`` and ``audio_lengths``), one
    per audio, and ``audio_index`` (row -> audio)."""
    language_model = qwen2_audio(model).model.language_model
    return language_model(
        inputs_embeds=input_embeddings(model, batch), attention_mask=batch["attention_mask"]
    ).last_hidden_state


def input_embeddings(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Embeddings (rows, length, hidden) of ``batch`` (as :func:`hidden_states` takes it), audio in place."""
    return embed(model, batch["input_ids"], audio_embeddings(model, batch), batch["audio_index"])


def text_generator(model: nn.Module) -> GenerationMixin:
    """Qwen2-Audio's language model and LM head as a text causal LM (the same modules, nothing
    copied), to ``generate`` from :func:`input_embeddings`. Its forward applies the head at the last
    position only; the stock forward computes the whole vocabulary's logits at every prompt position
    (on ``mini``, most of a batch's prefill and 150k floats per position of memory)."""
    core = qwen2_audio(model)
    with torch.device("meta"):  # the skeleton only: its two modules are replaced below
        causal = AutoModelForCausalLM.from_config(core.config.text_config)
    causal.model = core.model.language_model
    causal.lm_head = model.get_output_embeddings()
    return causal.eval()


def logits(model: nn.Module, hidden: torch.Tensor) -> torch.Tensor:
    """LM-head logits for the given hidden states (any leading shape)."""
    return model.get_output_embeddings()(hidden)


def slot_coordinates(batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """The row and the token position of every valid slot of a batch, in the slots' order."""
    valid = batch["slot_valid"]
    rows = torch.arange(len(valid), device=valid.device)[:, None].expand_as(valid)
    return rows[valid], batch["slot_positions"][valid]


def slot_hidden(hidden: torch.Tensor, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Hidden states that predict each slot (the position before it), and the valid-slot mask."""
    rows, positions = slot_coordinates(batch)
    return hidden[rows, positions - 1], batch["slot_valid"]
