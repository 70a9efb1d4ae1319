"""Guidance by perturbing the denoiser's final hidden states: NOS for diffusion (Gruver et al. 2023) and,
on the autoregressive process, PPLM (Dathathri et al. 2020). A few Adagrad steps on a perturbation delta of
the hidden states h maximise

    guidance_scale * log p(y | x0_hat(h + delta)) - kl_weight * KL(p(x0 | h + delta) || p(x0 | h)),

where x0_hat(h) = softmax(head(h)) is the denoiser's predicted clean-token distribution, which the attribute
model reads (so it sees h through the frozen output layer); then the step samples from the reverse posterior
of the perturbed prediction."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from guided_diffusion.guidance.base import Guidance, GuidanceStep
from guided_diffusion.networks import AnyDenoiser

# log p(y | x0_hat, t) for predicted clean-token distributions x0_hat [B, L, S] and times t [B] -> [B]
HiddenLogLikelihood = Callable[[Tensor, Tensor], Tensor]


class HiddenStateGuidance(Guidance):
    """NOS / PPLM-style guidance.

    Args:
        denoiser: exposes ``hidden_states(xt, t, cond) -> (h, c)`` and ``head(h, c) -> logits``.
        log_likelihood: attribute model on predicted clean-token distributions, ``(x0_hat, t) -> [B]``.
        guidance_scale: weight of the attribute term.
        steps: optimiser steps per sampling step (0 = unguided).
        step_size: Adagrad learning rate.
        kl_weight: weight of the KL stability term.
    """

    def __init__(
        self,
        denoiser: AnyDenoiser,
        log_likelihood: HiddenLogLikelihood,
        *,
        guidance_scale: float = 1.0,
        steps: int = 5,
        step_size: float = 0.5,
        kl_weight: float = 0.1,
    ) -> None:
        if steps < 0 or step_size <= 0 or kl_weight < 0 or guidance_scale < 0:
            raise ValueError("need steps >= 0, step_size > 0, kl_weight >= 0 and guidance_scale >= 0")
        self.denoiser = denoiser
        self.log_likelihood = log_likelihood
        self.guidance_scale = float(guidance_scale)
        self.steps = steps
        self.step_size = step_size
        self.kl_weight = kl_weight

    def _active(self) -> bool:
        return self.steps > 0 and self.guidance_scale != 0.0

    def base_log_probs(self, step: GuidanceStep) -> Tensor:
        if self._active() and step.denoiser is self.denoiser:
            step.hidden_states()  # one network pass for the hidden states and the unguided transition
        return super().base_log_probs(step)

    def _hidden_states(self, step: GuidanceStep, times: Tensor) -> tuple[Tensor, Tensor]:
        if step.denoiser is self.denoiser:
            return step.hidden_states()
        with torch.no_grad():
            return self.denoiser.hidden_states(step.xt, times, None)

    def log_weights(self, step: GuidanceStep, base: Tensor) -> Tensor | None:
        if not self._active():
            return None
        process, xt = step.process, step.xt
        to_log_probs = step.logits_to_clean_log_probs
        times = torch.full((xt.shape[0],), float(step.t), device=xt.device)
        # the KL runs over every position: where the process carries xt (unmasked tokens, an AR prefix) the
        # perturbed and reference distributions are the same point mass and contribute exactly 0; under uniform
        # noise every position has a prediction. Without it the objective is guidance_scale * log p(y | .),
        # which Adagrad's per-coordinate normalisation makes independent of guidance_scale.
        h, c = self._hidden_states(step, times)
        with torch.no_grad():
            reference = to_log_probs(self.denoiser.head(h, c))  # [B, L, S]
        delta = torch.zeros_like(h, requires_grad=True)
        optimiser = torch.optim.Adagrad([delta], lr=self.step_size)
        with torch.enable_grad():
            for _ in range(self.steps):
                log_x = to_log_probs(self.denoiser.head(h + delta, c))
                kl = (log_x.exp() * (log_x - reference)).sum(dim=(1, 2))
                objective = self.guidance_scale * self.log_likelihood(log_x.exp(), times) - self.kl_weight * kl
                optimiser.zero_grad()
                (-objective.sum()).backward()
                optimiser.step()
        with torch.no_grad():
            log_x = to_log_probs(self.denoiser.head(h + delta, c)).to(base.dtype)
            return process.reverse_log_probs(log_x, xt, step.t, step.s) - base
