"""Audio input: any soundfile-readable file to a mono float32 waveform at the model's rate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile
import soxr

SAMPLE_RATE = 16_000  # Whisper / Qwen2-Audio feature extractors expect 16 kHz


class AudioError(ValueError):
    """An audio file that is missing, unreadable or empty; the message names the file."""


def load_audio(path: str | Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Read ``path``, average the channels to mono and resample to ``sample_rate`` (soxr, HQ)."""
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: audio file not found")
    try:
        samples, file_rate = soundfile.read(path, dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError) as error:
        raise AudioError(f"{path}: not a readable audio file ({error})") from error
    if samples.shape[0] == 0:
        raise AudioError(f"{path}: the audio is empty (0 samples)")
    mono = samples.mean(axis=1)
    if file_rate != sample_rate:
        mono = soxr.resample(mono, file_rate, sample_rate)
    return mono.astype(np.float32, copy=False)
