"""Discrete noise processes: one class per process, sharing the :class:`DiffusionProcess` interface."""

from typing import Any

from guided_diffusion.processes.autoregressive import AutoregressiveProcess
from guided_diffusion.processes.base import LOG_FLOOR, DiffusionProcess, LossOutput, LossType
from guided_diffusion.processes.masked import REMASK_SYNTAX, MaskedProcess, Remasking
from guided_diffusion.processes.uniform import UniformProcess
from guided_diffusion.schedules import schedule_from_json

PROCESSES: dict[str, type[DiffusionProcess]] = {
    "masked": MaskedProcess,
    "uniform": UniformProcess,
    "autoregressive": AutoregressiveProcess,
}


def process_from_json(data: dict[str, Any]) -> DiffusionProcess:
    """Rebuild a process from :meth:`DiffusionProcess.to_json` output.

    Raises:
        ValueError: if the process name is unknown.
    """
    name = str(data.get("name"))
    if name not in PROCESSES:
        raise ValueError(f"unknown process {name!r}; allowed: {sorted(PROCESSES)}")
    return PROCESSES[name](
        int(data["vocab_size"]),
        schedule_from_json(data["schedule"]),
        loss_type=data.get("loss_type", "continuous"),
        num_timesteps=int(data.get("num_timesteps", 1000)),
        t_min=float(data.get("t_min", 1e-3)),
    )


__all__ = [
    "LOG_FLOOR",
    "PROCESSES",
    "REMASK_SYNTAX",
    "AutoregressiveProcess",
    "DiffusionProcess",
    "LossOutput",
    "LossType",
    "MaskedProcess",
    "Remasking",
    "UniformProcess",
    "process_from_json",
]
