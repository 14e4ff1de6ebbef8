"""Data: corpus readers, audio input, score scales, the synthetic corpus and the feature cache."""

from apa.data.audio import SAMPLE_RATE, AudioError, load_audio, split_into_chunks
from apa.data.corpus import DEV, TRAIN, Corpus, CorpusError, DataProblem, SpeakerHeldOut
from apa.data.features import FeatureCache, FeatureTable
from apa.data.records import LabelError, Scores, Utterance, WordScores
from apa.data.speechocean762 import Speechocean762, Speechocean762Hub
from apa.data.synthetic import SyntheticCorpus

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
