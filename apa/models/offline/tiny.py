"""``tiny``: a randomly initialised Qwen2-Audio of the real architecture, for fast offline tests.

It has Qwen2-Audio-7B-Instruct's structure (Whisper-style audio tower on 128 mel bins, projector,
Qwen2 decoder with an untied LM head and the 156,032-entry vocabulary), its real tokenizer, chat
template and processor, but two layers per tower and a narrow width. It learns nothing about
speech; it exercises every code path the 7B model takes. The weights follow from the seed
(:mod:`apa.models.offline.base` builds and caches it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from transformers import (
    Qwen2AudioConfig,
    Qwen2AudioForConditionalGeneration,
    Qwen2AudioProcessor,
    WhisperFeatureExtractor,
)

from apa.models.offline.base import OfflineQwen2Audio
from apa.models.offline.tokenizer import qwen2_audio_tokenizer

QWEN2_AUDIO_VOCAB_SIZE = 156032
AUDIO_TOKEN_ID = 151646
ENDOFTEXT_ID, IM_END_ID = 151643, 151645
NUM_MEL_BINS = 128


@dataclass(frozen=True)
class TinyQwen2Audio(OfflineQwen2Audio):
    """Builds (once) and loads the tiny model; ``conf/model/tiny.yaml`` instantiates it."""

    audio_layers: int = 2
    audio_hidden_size: int = 64
    text_layers: int = 2
    text_hidden_size: int = 64
    attention_heads: int = 4
    key_value_heads: int = 2

    name: ClassVar[str] = "tiny-qwen2-audio"
    builder_version: ClassVar[int] = 2

    def config(self) -> Qwen2AudioConfig:
        audio = dict(
            model_type="qwen2_audio_encoder",
            num_mel_bins=NUM_MEL_BINS,
            encoder_layers=self.audio_layers,
            encoder_attention_heads=self.attention_heads,
            encoder_ffn_dim=4 * self.audio_hidden_size,
            d_model=self.audio_hidden_size,
            max_source_positions=1500,
        )
        text = dict(
            model_type="qwen2",
            vocab_size=QWEN2_AUDIO_VOCAB_SIZE,
            hidden_size=self.text_hidden_size,
            intermediate_size=2 * self.text_hidden_size,
            num_hidden_layers=self.text_layers,
            num_attention_heads=self.attention_heads,
            num_key_value_heads=self.key_value_heads,
            max_position_embeddings=8192,
            rms_norm_eps=1e-5,
            tie_word_embeddings=False,
            bos_token_id=ENDOFTEXT_ID,
            eos_token_id=ENDOFTEXT_ID,
            pad_token_id=ENDOFTEXT_ID,
        )
        return Qwen2AudioConfig(audio_config=audio, text_config=text, audio_token_index=AUDIO_TOKEN_ID)

    def assemble(self) -> tuple[Qwen2AudioForConditionalGeneration, Qwen2AudioProcessor]:
        model = Qwen2AudioForConditionalGeneration(self.config())
        set_generation_tokens(model)
        return model, qwen2_audio_processor()


def set_generation_tokens(model: Qwen2AudioForConditionalGeneration) -> None:
    """Qwen2-Audio-7B-Instruct's: generation ends at <|endoftext|> or <|im_end|>, pads with the first."""
    model.generation_config.eos_token_id = [ENDOFTEXT_ID, IM_END_ID]
    model.generation_config.pad_token_id = ENDOFTEXT_ID


def qwen2_audio_processor() -> Qwen2AudioProcessor:
    """Qwen2-Audio's processor, offline: the real tokenizer and chat template, 128-bin Whisper features."""
    tokenizer = qwen2_audio_tokenizer()
    features = WhisperFeatureExtractor(feature_size=NUM_MEL_BINS, sampling_rate=16000, return_attention_mask=True)
    return Qwen2AudioProcessor(features, tokenizer, chat_template=tokenizer.chat_template)
