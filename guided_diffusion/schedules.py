"""Noise schedules alpha_t for discrete diffusion (Sahoo et al. 2024, Sec. 3; Schiff et al. 2025, Sec. 2).

``alpha_t`` is the probability that a token is still clean at time t in [0, 1]; alpha_0 = 1, alpha_1 = eps.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import torch
from torch import Tensor


class NoiseSchedule(ABC):
    """A monotone schedule alpha_t with alpha_0 = 1 and alpha_1 = eps (close to 0).

    Args:
        eps: the value of alpha at t = 1; must lie in [0, 1).
    """

    name: str = "schedule"

    def __init__(self, *, eps: float = 1e-3) -> None:
        if not 0.0 <= eps < 1.0:
            raise ValueError(f"schedule eps must lie in [0, 1), got {eps}")
        self.eps = float(eps)

    @abstractmethod
    def alpha(self, t: Tensor) -> Tensor:
        """alpha_t, element-wise for t in [0, 1]."""

    @abstractmethod
    def alpha_prime(self, t: Tensor) -> Tensor:
        """d alpha_t / dt (negative), element-wise."""

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "eps": self.eps}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(eps={self.eps})"


class LogLinearSchedule(NoiseSchedule):
    """alpha_t = 1 - (1 - eps) t, i.e. sigma(t) = -log(1 - (1 - eps) t) (MDLM's default)."""

    name = "loglinear"

    def alpha(self, t: Tensor) -> Tensor:
        return 1.0 - (1.0 - self.eps) * t

    def alpha_prime(self, t: Tensor) -> Tensor:
        return torch.full_like(t, -(1.0 - self.eps))


class CosineSchedule(NoiseSchedule):
    """alpha_t = eps + (1 - eps) cos(pi t / 2)."""

    name = "cosine"

    def alpha(self, t: Tensor) -> Tensor:
        return self.eps + (1.0 - self.eps) * torch.cos(0.5 * math.pi * t)

    def alpha_prime(self, t: Tensor) -> Tensor:
        return -(1.0 - self.eps) * 0.5 * math.pi * torch.sin(0.5 * math.pi * t)


SCHEDULES: dict[str, type[NoiseSchedule]] = {"loglinear": LogLinearSchedule, "cosine": CosineSchedule}


def schedule_from_json(data: dict[str, object]) -> NoiseSchedule:
    """Rebuild a schedule from :meth:`NoiseSchedule.to_json` output.

    Raises:
        ValueError: if the schedule name is unknown.
    """
    name = str(data.get("name"))
    if name not in SCHEDULES:
        raise ValueError(f"unknown noise schedule {name!r}; allowed: {sorted(SCHEDULES)}")
    eps = data.get("eps", 1e-3)
    return SCHEDULES[name](eps=float(eps))  # type: ignore[arg-type]
