"""Noisy (time-conditioned) classifiers and regressors used by classifier-based guidance."""

from classifiers.checkpoint import LoadedClassifier, load_classifier
from classifiers.hidden import DenoisedObjective
from classifiers.network import ClassifierConfig, ClassifierOutput, NoisyClassifier
from classifiers.objective import ClassifierObjective
from classifiers.scoring import class_target, gaussian_target

__all__ = [
    "ClassifierConfig",
    "ClassifierObjective",
    "ClassifierOutput",
    "DenoisedObjective",
    "LoadedClassifier",
    "NoisyClassifier",
    "class_target",
    "gaussian_target",
    "load_classifier",
]
