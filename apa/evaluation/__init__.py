"""Evaluation: decoding strategies, metrics (pure functions), reports, and the evaluation job."""

from apa.evaluation.decoding import (
    DECODERS,
    GenerationDecoder,
    Prediction,
    RegressionDecoder,
    SlotDecoder,
    decoder_for,
)
from apa.evaluation.metrics import Report, evaluate, paired_bootstrap
from apa.evaluation.run import EvaluateJob, announce, decode_and_score, run, score, write_predictions

__all__ = [
    "DECODERS",
    "EvaluateJob",
    "GenerationDecoder",
    "Prediction",
    "RegressionDecoder",
    "Report",
    "SlotDecoder",
    "announce",
    "decode_and_score",
    "decoder_for",
    "evaluate",
    "paired_bootstrap",
    "run",
    "score",
    "write_predictions",
]
