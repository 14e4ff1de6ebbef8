"""Training: a job description and the function that runs it."""

from apa.training.run import TrainJob, run

__all__ = ["TrainJob", "run"]
