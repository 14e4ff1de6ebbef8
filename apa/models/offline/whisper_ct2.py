"""Whisper weights from a CTranslate2 ``model.bin`` (faster-whisper's format), as PyTorch tensors.

The file is a header (format version, spec name, revision) and a list of named arrays (name,
rank, dims, dtype, byte count, bytes), then aliases. Whisper's converter fuses each attention's
q/k/v projections into one matrix (cross-attention: q, then k/v) with a zero key bias; this
module splits them back into the Hugging Face Whisper names, which the Qwen2-Audio audio tower
shares.
"""

from __future__ import annotations

import struct

import numpy as np
import torch

DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16, 5: "bfloat16"}


class CTranslate2Reader:
    def __init__(self, data: bytes):
        self.data = memoryview(data)
        self.position = 0

    def scalar(self, fmt: str):
        (value,) = struct.unpack_from(fmt, self.data, self.position)
        self.position += struct.calcsize(fmt)
        return value

    def string(self) -> str:
        length = self.scalar("<H")
        text = bytes(self.data[self.position : self.position + length]).rstrip(b"\0").decode()
        self.position += length
        return text

    def array(self) -> tuple[str, np.ndarray]:
        name = self.string()
        dims = [self.scalar("<I") for _ in range(self.scalar("<B"))]
        dtype, size = DTYPES[self.scalar("<B")], self.scalar("<I")
        raw = self.data[self.position : self.position + size]
        self.position += size
        if dtype == "bfloat16":
            values = torch.frombuffer(bytearray(raw), dtype=torch.bfloat16).float().numpy()
        else:
            values = np.frombuffer(raw, dtype=dtype).copy()
        return name, values.reshape(dims)


def read_ctranslate2(data: bytes) -> tuple[str, dict[str, np.ndarray]]:
    """(spec name, arrays by name, aliases resolved) of a CTranslate2 model file."""
    reader = CTranslate2Reader(data)
    version = reader.scalar("<I")
    if version < 5:
        raise ValueError(f"CTranslate2 model format version {version} is not supported (5 or later)")
    spec = reader.string()
    reader.scalar("<I")  # spec revision
    arrays = dict(reader.array() for _ in range(reader.scalar("<I")))
    for _ in range(reader.scalar("<I")):
        alias, target = reader.string(), reader.string()
        arrays[alias] = arrays[target]
    if reader.position != len(reader.data):
        raise ValueError(f"{len(reader.data) - reader.position} unread bytes after the model: truncated or corrupt")
    return spec, arrays


def _tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array)).float()


def _linear(state: dict, target: str, arrays: dict, source: str, bias: bool = True) -> None:
    state[f"{target}.weight"] = _tensor(arrays[f"{source}/weight"])
    if bias:
        state[f"{target}.bias"] = _tensor(arrays[f"{source}/bias"])


def _layer_norm(state: dict, target: str, arrays: dict, source: str) -> None:
    state[f"{target}.weight"] = _tensor(arrays[f"{source}/gamma"])
    state[f"{target}.bias"] = _tensor(arrays[f"{source}/beta"])


def _split(state: dict, target: str, names: tuple[str, ...], arrays: dict, source: str) -> None:
    """A fused projection into its parts; the key projection has no bias in Whisper."""
    weights = np.split(arrays[f"{source}/weight"], len(names))
    biases = np.split(arrays[f"{source}/bias"], len(names))
    for name, weight, bias in zip(names, weights, biases, strict=True):
        state[f"{target}.{name}.weight"] = _tensor(weight)
        if name != "k_proj":
            state[f"{target}.{name}.bias"] = _tensor(bias)


def _layer(state: dict, target: str, arrays: dict, source: str) -> None:
    """Self-attention and feed-forward blocks, which encoder and decoder layers share."""
    _split(state, f"{target}.self_attn", ("q_proj", "k_proj", "v_proj"), arrays, f"{source}/self_attention/linear_0")
    _linear(state, f"{target}.self_attn.out_proj", arrays, f"{source}/self_attention/linear_1")
    _layer_norm(state, f"{target}.self_attn_layer_norm", arrays, f"{source}/self_attention/layer_norm")
    _linear(state, f"{target}.fc1", arrays, f"{source}/ffn/linear_0")
    _linear(state, f"{target}.fc2", arrays, f"{source}/ffn/linear_1")
    _layer_norm(state, f"{target}.final_layer_norm", arrays, f"{source}/ffn/layer_norm")


def encoder_state(arrays: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """The encoder in Hugging Face Whisper names (those of ``Qwen2AudioEncoder`` too)."""
    state: dict[str, torch.Tensor] = {}
    for conv in ("conv1", "conv2"):
        _linear(state, conv, arrays, f"encoder/{conv}")
    state["embed_positions.weight"] = _tensor(arrays["encoder/position_encodings/encodings"])
    layers = sum(1 for name in arrays if name.startswith("encoder/layer_") and name.endswith("linear_0/weight")) // 2
    for i in range(layers):
        _layer(state, f"layers.{i}", arrays, f"encoder/layer_{i}")
    _layer_norm(state, "layer_norm", arrays, "encoder/layer_norm")
    return state


def decoder_state(arrays: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """The decoder in Hugging Face Whisper names (used to check the conversion by transcribing)."""
    state: dict[str, torch.Tensor] = {
        "embed_tokens.weight": _tensor(arrays["decoder/embeddings/weight"]),
        "embed_positions.weight": _tensor(arrays["decoder/position_encodings/encodings"]),
    }
    layers = sum(1 for name in arrays if name.startswith("decoder/layer_") and name.endswith("ffn/linear_0/weight"))
    for i in range(layers):
        source, target = f"decoder/layer_{i}", f"layers.{i}"
        _layer(state, target, arrays, source)
        _linear(state, f"{target}.encoder_attn.q_proj", arrays, f"{source}/attention/linear_0")
        _split(state, f"{target}.encoder_attn", ("k_proj", "v_proj"), arrays, f"{source}/attention/linear_1")
        _linear(state, f"{target}.encoder_attn.out_proj", arrays, f"{source}/attention/linear_2")
        _layer_norm(state, f"{target}.encoder_attn_layer_norm", arrays, f"{source}/attention/layer_norm")
    _layer_norm(state, "layer_norm", arrays, "decoder/layer_norm")
    return state
