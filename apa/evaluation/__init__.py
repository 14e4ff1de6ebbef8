"""Evaluation: a job description and the function that runs it."""

from apa.evaluation.run import EvaluateJob, run

__all__ = ["EvaluateJob", "run"]
