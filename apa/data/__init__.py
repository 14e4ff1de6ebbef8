"""Data: audio input (corpus readers, synthetic corpus and feature cache follow)."""

from apa.data.audio import SAMPLE_RATE, AudioError, load_audio

__all__ = ["SAMPLE_RATE", "AudioError", "load_audio"]
