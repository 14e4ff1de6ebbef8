"""Training: examples, the trainer with an objective as its loss, and the job that runs them."""

from apa.training.run import TrainJob, run
from apa.training.trainer import Scorer, ScoringTrainer, TrainerSettings

__all__ = ["Scorer", "ScoringTrainer", "TrainJob", "TrainerSettings", "run"]
