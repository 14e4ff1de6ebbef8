"""Data: corpus readers, audio input, score scales, the synthetic corpus and the feature cache.

The feature cache (``FeatureCache``, ``FeatureTable``) is imported on first use: it needs
``datasets`` and ``transformers``, which reading labels and scores files does not.
"""

from importlib import import_module

from apa.data.audio import SAMPLE_RATE, AudioError, load_audio, split_into_chunks
from apa.data.corpus import DEV, TRAIN, Corpus, CorpusError, DataProblem, SpeakerHeldOut
from apa.data.records import LabelError, Scores, Utterance, WordScores
from apa.data.speechocean762 import Speechocean762, Speechocean762Hub
from apa.data.synthetic import SyntheticCorpus

FEATURES = ("FeatureCache", "FeatureTable")


def __getattr__(name: str):
    if name in FEATURES:
        return getattr(import_module("apa.data.features"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DEV",
    "SAMPLE_RATE",
    "TRAIN",
    "AudioError",
    "Corpus",
    "CorpusError",
    "DataProblem",
    "FeatureCache",
    "FeatureTable",
    "LabelError",
    "Scores",
    "SpeakerHeldOut",
    "Speechocean762",
    "Speechocean762Hub",
    "SyntheticCorpus",
    "Utterance",
    "WordScores",
    "load_audio",
    "split_into_chunks",
]
