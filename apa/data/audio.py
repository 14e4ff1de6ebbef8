"""Audio input: a file (or its bytes) to a mono float32 waveform at the model's rate, in chunks
the model can take."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import soundfile
import soxr

SAMPLE_RATE = 16_000  # Whisper / Qwen2-Audio feature extractors expect 16 kHz
MAX_CHUNK_SECONDS = 30.0  # the Whisper encoder sees at most 30 s

AudioSource = Path | str | bytes


class AudioError(ValueError):
    """An audio file that is missing, unreadable or empty; the message names it."""


def _open(source: AudioSource, name: str | None) -> tuple[Path | io.BytesIO, str]:
    if isinstance(source, bytes):
        return io.BytesIO(source), name or "<audio bytes>"
    path = Path(source)
    if not path.is_file():
        raise AudioError(f"{name or path}: audio file not found ({path})")
    return path, name or str(path)


def check_audio(source: AudioSource, name: str | None = None) -> float:
    """Read only the header: the duration in seconds, or :class:`AudioError` for a bad file."""
    handle, label = _open(source, name)
    try:
        info = soundfile.info(handle)
    except (soundfile.LibsndfileError, RuntimeError) as error:
        raise AudioError(f"{label}: not a readable audio file ({error})") from error
    if info.frames == 0:
        raise AudioError(f"{label}: the audio is empty (0 samples)")
    return info.frames / info.samplerate


def load_audio(source: AudioSource, sample_rate: int = SAMPLE_RATE, name: str | None = None) -> np.ndarray:
    """Read ``source``, average the channels to mono and resample to ``sample_rate`` (soxr, HQ)."""
    handle, label = _open(source, name)
    try:
        samples, file_rate = soundfile.read(handle, dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError) as error:
        raise AudioError(f"{label}: not a readable audio file ({error})") from error
    if samples.shape[0] == 0:
        raise AudioError(f"{label}: the audio is empty (0 samples)")
    mono = samples.mean(axis=1)
    if file_rate != sample_rate:
        mono = soxr.resample(mono, file_rate, sample_rate)
    return mono.astype(np.float32, copy=False)


def split_into_chunks(
    audio: np.ndarray, sample_rate: int = SAMPLE_RATE, max_seconds: float = MAX_CHUNK_SECONDS
) -> list[np.ndarray]:
    """Equal consecutive chunks of at most ``max_seconds`` (one chunk when the audio fits), so a
    long recording is scored chunk by chunk and the predictions averaged (Ma et al. 2025)."""
    max_samples = int(max_seconds * sample_rate)
    return np.array_split(audio, max(1, math.ceil(len(audio) / max_samples)))
