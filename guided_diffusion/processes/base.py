"""The interface every discrete noise process implements (forward corruption, prior, reverse, NELBO).

Processes never own the denoiser: losses take a ``denoise_fn(xt, t) -> logits`` (as in guided-diffusion's
``training_losses(model, ...)``), so trainers, classifiers and samplers share one process object.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from guided_diffusion.schedules import NoiseSchedule

if TYPE_CHECKING:
    from guided_diffusion.processes.masked import Remasking

# Log-probability used for structural zeros (a masked token under SUBS, the off-token states of an
# unmasked position). It is finite so that guidance arithmetic such as g*a + (1-g)*b never forms
# 0 * inf; exp(LOG_FLOOR) is exactly 0 in float32 and float64.
LOG_FLOOR = -1.0e4

DenoiseFn = Callable[[Tensor, Tensor], Tensor]


class LossType(StrEnum):
    """How the NELBO's diffusion term is estimated."""

    CONTINUOUS = "continuous"  # t ~ U(t_min, 1), closed-form continuous-time integrand
    DISCRETE = "discrete"  # t = i/T, T * KL(q(xs | xt, x0) || p(xs | xt)) with s = (i-1)/T


@dataclass(frozen=True)
class LossOutput:
    """A NELBO estimate for a batch.

    Attributes:
        loss: scalar, mean NELBO in nats per token (what the optimiser minimises).
        nelbo: ``[B]`` NELBO estimate of each sequence, in nats.
        t: ``[B]`` diffusion times used.
    """

    loss: Tensor
    nelbo: Tensor
    t: Tensor


def expand_time(t: Tensor | float, batch: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    """Turn a scalar or ``[B]`` time into a ``[B, 1, 1]`` tensor for broadcasting over ``[B, L, S]``."""
    t = torch.as_tensor(t, device=device, dtype=dtype)
    if t.dim() == 0:
        t = t.expand(batch)
    return t.reshape(batch, 1, 1)


class DiffusionProcess(ABC):
    """Forward corruption, prior, reverse posterior and NELBO of one discrete noise process.

    Args:
        vocab_size: V, the number of data tokens (ids ``0..V-1``).
        schedule: the noise schedule alpha_t.
        loss_type: continuous-time or discrete-time NELBO.
        num_timesteps: T for the discrete-time NELBO.
        t_min: smallest training time for the continuous NELBO (avoids the 1/t weight blowing up).
    """

    name: str = "process"
    #: the denoiser must be causal and read the sequence shifted behind a BOS token (autoregressive order)
    causal: bool = False

    def __init__(
        self,
        vocab_size: int,
        schedule: NoiseSchedule,
        *,
        loss_type: LossType | str = LossType.CONTINUOUS,
        num_timesteps: int = 1000,
        t_min: float = 1e-3,
    ) -> None:
        if vocab_size < 2:
            raise ValueError(f"vocab_size must be >= 2, got {vocab_size}")
        if num_timesteps < 1:
            raise ValueError(f"num_timesteps must be >= 1, got {num_timesteps}")
        if not 0.0 <= t_min < 1.0:
            raise ValueError(f"t_min must lie in [0, 1), got {t_min}")
        self.vocab_size = int(vocab_size)
        self.schedule = schedule
        self.loss_type = LossType(loss_type)
        self.num_timesteps = int(num_timesteps)
        self.t_min = float(t_min)

    def to_json(self) -> dict[str, object]:
        """Everything needed to rebuild this process (stored in checkpoints)."""
        return {
            "name": self.name,
            "vocab_size": self.vocab_size,
            "schedule": self.schedule.to_json(),
            "loss_type": self.loss_type.value,
            "num_timesteps": self.num_timesteps,
            "t_min": self.t_min,
        }

    def same_noise_as(self, other: DiffusionProcess) -> bool:
        """Whether ``other`` corrupts data identically (same class, vocabulary and schedule)."""
        return (
            type(self) is type(other)
            and self.vocab_size == other.vocab_size
            and self.schedule.to_json() == other.schedule.to_json()
        )

    # ----------------------------------------------------------------- state space
    @property
    @abstractmethod
    def num_states(self) -> int:
        """S, the number of states a position can take (and the denoiser's output width)."""

    @property
    @abstractmethod
    def time_conditioned_by_default(self) -> bool:
        """Whether denoisers for this process usually see t (MDLM: no; UDLM: yes)."""

    @abstractmethod
    def is_noise(self, xt: Tensor) -> Tensor:
        """``[B, L]`` bool: positions that carry no information about x0 for certain (masks)."""

    # ----------------------------------------------------------------- forward process
    @abstractmethod
    def corrupt(self, x0: Tensor, t: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        """Draw xt ~ q(xt | x0). ``x0``: [B, L] data ids; ``t``: [B]. Returns [B, L]."""

    @abstractmethod
    def prior(
        self, batch: int, length: int, *, generator: torch.Generator | None = None, device: torch.device
    ) -> Tensor:
        """Draw ``[B, L]`` from the prior (t = 1)."""

    # ----------------------------------------------------------------- reverse process
    @abstractmethod
    def clean_log_probs(self, logits: Tensor, xt: Tensor) -> Tensor:
        """Turn denoiser logits ``[B, L, S]`` into log x_theta(xt) over clean tokens, ``[B, L, S]``."""

    @abstractmethod
    def reverse_log_probs(self, clean_log_probs: Tensor, xt: Tensor, t: Tensor | float, s: Tensor | float) -> Tensor:
        """log p_theta(xs | xt) ``[B, L, S]`` for s < t, plugging x_theta into q(xs | xt, x0)."""

    @abstractmethod
    def classifier_free_log_probs(
        self,
        cond_clean: Tensor,
        uncond_clean: Tensor,
        xt: Tensor,
        t: Tensor | float,
        s: Tensor | float,
        scale: float,
    ) -> Tensor:
        """D-CFG reverse log-probabilities ``[B, L, S]`` with guidance_scale gamma = ``scale``."""

    def with_remasking(self, remasking: Remasking | None) -> DiffusionProcess:
        """This process with a remasking reverse step (ReMDM); only the masked process has one."""
        if remasking is None:
            return self
        raise ValueError(f"remasking needs the masked (absorbing-state) process; this model's process is {self.name}")

    # ----------------------------------------------------------------- NELBO
    @abstractmethod
    def continuous_nelbo_terms(self, log_x: Tensor, x0: Tensor, xt: Tensor, t: Tensor) -> Tensor:
        """Per-position continuous-time NELBO integrand ``[B, L]`` (nats) at times ``t`` [B]."""

    @abstractmethod
    def discrete_nelbo_terms(self, log_x: Tensor, x0: Tensor, xt: Tensor, t: Tensor, s: Tensor) -> Tensor:
        """Per-position ``KL(q(xs | xt, x0) || p_theta(xs | xt))`` ``[B, L]`` (nats)."""

    def sample_times(self, batch: int, *, generator: torch.Generator | None, device: torch.device) -> Tensor:
        """Stratified times in [t_min, 1] (one uniform offset, B evenly spaced strata; MDLM's antithetic
        sampling), which lowers the variance of the NELBO estimate."""
        u = torch.rand((), generator=generator, device=device)
        strata = (u + torch.arange(batch, device=device) / batch) % 1.0
        return self.t_min + (1.0 - self.t_min) * strata

    def loss(
        self,
        denoise_fn: DenoiseFn,
        x0: Tensor,
        *,
        generator: torch.Generator | None = None,
        t: Tensor | None = None,
    ) -> LossOutput:
        """NELBO of ``x0`` ``[B, L]`` under the denoiser, averaged per token.

        Args:
            denoise_fn: maps ``(xt [B, L], t [B])`` to logits ``[B, L, S]``.
            x0: clean data ids.
            generator: source of randomness for t and the corruption.
            t: optional fixed times ``[B]`` (continuous loss) - used by tests and validation.
        """
        batch, length = x0.shape
        if self.loss_type is LossType.CONTINUOUS:
            if t is None:
                t = self.sample_times(batch, generator=generator, device=x0.device)
            xt = self.corrupt(x0, t, generator=generator)
            log_x = self.clean_log_probs(denoise_fn(xt, t).float(), xt)
            terms = self.continuous_nelbo_terms(log_x, x0, xt, t)
        else:
            steps = self.num_timesteps
            i = torch.randint(1, steps + 1, (batch,), generator=generator, device=x0.device)
            t = i.float() / steps
            s = (i.float() - 1.0) / steps
            xt = self.corrupt(x0, t, generator=generator)
            log_x = self.clean_log_probs(denoise_fn(xt, t).float(), xt)
            terms = steps * self.discrete_nelbo_terms(log_x, x0, xt, t, s)
        nelbo = terms.sum(dim=1)  # [B]
        return LossOutput(loss=nelbo.mean() / length, nelbo=nelbo, t=t)
