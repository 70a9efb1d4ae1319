"""Masked (absorbing-state) diffusion, MDLM (Sahoo et al. 2024): SUBS parameterisation, Eq. 8 reverse
step, Eq. 10 continuous-time NELBO, and the discrete-time (D3PM-style) NELBO; and the remasking reverse
step of ReMDM (Wang et al. 2025), which lets unmasked tokens be masked again while sampling."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from guided_diffusion.processes.absorbing import AbsorbingProcess
from guided_diffusion.processes.base import LOG_FLOOR, expand_time

RemaskStrategy = Literal["cap", "rescale"]
REMASK_SYNTAX = (
    "none, cap:ETA (sigma_t = min(ETA, sigma_max)) or rescale:ETA (sigma_t = ETA * sigma_max), ETA in [0, 1]"
)


@dataclass(frozen=True)
class Remasking:
    """How much an unmasked token may be masked again at a reverse step from t to s (ReMDM).

    The step keeps the forward marginals q(xs | x0) of masked diffusion for any sigma_t in
    ``[0, sigma_max]``, ``sigma_max = min(1, (1 - alpha_s) / alpha_t)``: an unmasked token is masked again with
    probability sigma_t, and a masked one is unmasked with probability ``(alpha_s - (1 - sigma_t) alpha_t) /
    (1 - alpha_t)`` (drawn from x_theta). sigma_t = 0 is the MDLM step. At s = 0, sigma_max = 0, so the last
    step still leaves no mask.

    Attributes:
        strategy: ``cap`` (sigma_t = min(eta, sigma_max)) or ``rescale`` (sigma_t = eta * sigma_max).
        eta: in [0, 1].
    """

    strategy: RemaskStrategy
    eta: float

    def __post_init__(self) -> None:
        if self.strategy not in ("cap", "rescale"):
            raise ValueError(f"remasking strategy must be 'cap' or 'rescale', got {self.strategy!r}")
        if not (math.isfinite(self.eta) and 0.0 <= self.eta <= 1.0):
            raise ValueError(f"remasking eta must lie in [0, 1], got {self.eta}")

    @classmethod
    def parse(cls, text: str) -> Remasking | None:
        """``none`` -> None; ``cap:0.02`` or ``rescale:0.5`` -> a :class:`Remasking`. ValueError otherwise."""
        text = text.strip()
        if text.lower() in ("none", "off", ""):
            return None
        strategy, sep, value = text.partition(":")
        try:
            if not sep:
                raise ValueError("no eta")
            return cls(strategy, float(value))  # type: ignore[arg-type]
        except ValueError:
            raise ValueError(f"remasking must be {REMASK_SYNTAX}; got {text!r}") from None

    def sigma(self, alpha_t: Tensor, alpha_s: Tensor) -> Tensor:
        """sigma_t for the step between ``alpha_t`` and ``alpha_s`` (same shape)."""
        sigma_max = ((1.0 - alpha_s) / alpha_t).clamp(max=1.0)
        if self.strategy == "cap":
            return sigma_max.clamp(max=self.eta)
        return self.eta * sigma_max

    def __str__(self) -> str:
        return f"{self.strategy}:{self.eta:g}"


class MaskedProcess(AbsorbingProcess):
    """Absorbing-state noise: each token becomes ``mask_id = vocab_size`` with probability 1 - alpha_t.

    States: ``S = vocab_size + 1`` (data tokens, then the mask).
    """

    name = "masked"
    #: the remasking of the reverse step (None: MDLM's, where unmasked tokens stay); see :meth:`with_remasking`
    remasking: Remasking | None = None

    def corrupt(self, x0: Tensor, t: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        alpha = self.schedule.alpha(t.float()).reshape(-1, 1)  # [B, 1]
        keep = torch.rand(x0.shape, generator=generator, device=x0.device) < alpha
        return torch.where(keep, x0, torch.full_like(x0, self.mask_id))

    def with_remasking(self, remasking: Remasking | None) -> MaskedProcess:
        """This process with the ReMDM reverse step ``remasking`` (None: the MDLM step). The forward noise,
        the NELBO and :meth:`to_json` are unchanged, so checkpoints and classifiers match it as before."""
        other = copy.copy(self)
        other.remasking = remasking
        return other

    def reverse_log_probs(self, clean_log_probs: Tensor, xt: Tensor, t: Tensor | float, s: Tensor | float) -> Tensor:
        batch, length = xt.shape
        dtype = clean_log_probs.dtype
        alpha_t = self.schedule.alpha(expand_time(t, batch, xt.device, dtype))
        alpha_s = self.schedule.alpha(expand_time(s, batch, xt.device, dtype))
        sigma = None if self.remasking is None else self.remasking.sigma(alpha_t, alpha_s)  # [B, 1, 1]
        # p(v) = x_theta[v] (alpha_s - (1 - sigma) alpha_t) / (1 - alpha_t);
        # p(mask) = (1 - alpha_s - sigma alpha_t) / (1 - alpha_t); sigma = 0 is MDLM's Eq. 8
        if sigma is None:
            log_unmask = torch.log(alpha_s - alpha_t) - torch.log1p(-alpha_t)  # [B, 1, 1]
            log_stay = torch.log1p(-alpha_s) - torch.log1p(-alpha_t)
        else:
            log_unmask = torch.log(alpha_s - (1.0 - sigma) * alpha_t) - torch.log1p(-alpha_t)
            log_stay = torch.log((1.0 - alpha_s - sigma * alpha_t).clamp_min(0.0)) - torch.log1p(-alpha_t)
        out = clean_log_probs + log_unmask
        out[..., self.mask_id : self.mask_id + 1] = log_stay.expand(-1, length, 1)
        out = out.clamp_min(LOG_FLOOR)
        # unmasked positions keep their token (clean_log_probs is already one-hot there, SUBS), or with
        # remasking keep it with probability 1 - sigma and become the mask with probability sigma
        kept = clean_log_probs
        if sigma is not None:
            kept = torch.where(clean_log_probs > 0.5 * LOG_FLOOR, torch.log1p(-sigma), clean_log_probs)
            kept[..., self.mask_id : self.mask_id + 1] = torch.log(sigma).expand(-1, length, 1)
            kept = kept.clamp_min(LOG_FLOOR)
        return torch.where(self.is_noise(xt).unsqueeze(-1), out, kept)

    def continuous_nelbo_terms(self, log_x: Tensor, x0: Tensor, xt: Tensor, t: Tensor) -> Tensor:
        # -alpha'_t / (1 - alpha_t) * (-log x_theta[x0]) at masked positions (MDLM Eq. 10)
        alpha = self.schedule.alpha(t.to(log_x.dtype))
        weight = (-self.schedule.alpha_prime(t.to(log_x.dtype)) / (1.0 - alpha)).reshape(-1, 1)  # [B, 1]
        nll = -log_x.gather(-1, x0.unsqueeze(-1)).squeeze(-1)  # [B, L]
        return torch.where(self.is_noise(xt), weight * nll, torch.zeros_like(nll))

    def discrete_nelbo_terms(self, log_x: Tensor, x0: Tensor, xt: Tensor, t: Tensor, s: Tensor) -> Tensor:
        # KL between the true and model posteriors at a masked position reduces to
        # (alpha_s - alpha_t) / (1 - alpha_t) * (-log x_theta[x0]); unmasked positions contribute 0.
        alpha_t = self.schedule.alpha(t.to(log_x.dtype))
        alpha_s = self.schedule.alpha(s.to(log_x.dtype))
        weight = ((alpha_s - alpha_t) / (1.0 - alpha_t)).reshape(-1, 1)
        nll = -log_x.gather(-1, x0.unsqueeze(-1)).squeeze(-1)
        return torch.where(self.is_noise(xt), weight * nll, torch.zeros_like(nll))
