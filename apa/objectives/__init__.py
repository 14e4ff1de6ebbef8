"""Training objectives, one module each, one interface (:class:`Objective`)."""

from apa.objectives.base import Objective, ObjectiveOutput
from apa.objectives.cross_entropy import CrossEntropy
from apa.objectives.fair_average import FairAverage, expected_scores
from apa.objectives.regression import Regression
from apa.objectives.simpo import SimPOCrossEntropy

__all__ = [
    "CrossEntropy",
    "FairAverage",
    "Objective",
    "ObjectiveOutput",
    "Regression",
    "SimPOCrossEntropy",
    "expected_scores",
]
