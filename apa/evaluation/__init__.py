"""Evaluation: decoding strategies, metrics (pure functions), reports, and the evaluation job.

The decoders are imported on first use: they need torch and transformers, which scoring a
predictions file (``evaluate.py predictions=...``) does not.
"""

from importlib import import_module

from apa.evaluation.detection import Detection
from apa.evaluation.metrics import Report, evaluate, paired_bootstrap
from apa.evaluation.run import EvaluateJob, announce, decode_and_score, run, score, write_predictions

DECODING = ("GenerationDecoder", "Prediction", "RegressionDecoder", "SlotDecoder", "decoding_config", "default_decoder")


def __getattr__(name: str):
    if name in DECODING:
        return getattr(import_module("apa.evaluation.decoders"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Detection",
    "EvaluateJob",
    "GenerationDecoder",
    "Prediction",
    "RegressionDecoder",
    "Report",
    "SlotDecoder",
    "announce",
    "decode_and_score",
    "decoding_config",
    "default_decoder",
    "evaluate",
    "paired_bootstrap",
    "run",
    "score",
    "write_predictions",
]
