"""Training: the shared loop, objectives, checkpoints, precision choice and DDP helpers."""

from guided_diffusion.training.checkpoint import CheckpointError, read_json, read_tensors, save_checkpoint
from guided_diffusion.training.objectives import DenoiserObjective, Objective, drop_condition
from guided_diffusion.training.trainer import TrainerConfig, TrainResult, train

__all__ = [
    "CheckpointError",
    "DenoiserObjective",
    "Objective",
    "TrainResult",
    "TrainerConfig",
    "drop_condition",
    "read_json",
    "read_tensors",
    "save_checkpoint",
    "train",
]
