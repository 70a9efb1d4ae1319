"""Attribute models on a frozen denoiser's final hidden states, for NOS and PPLM guidance: a masked-mean
pooled MLP with a Gaussian or categorical head, trained on hidden states of data corrupted by the
denoiser's own process."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn

from classifiers.network import ClassifierOutput, Head, NoisyClassifier
from classifiers.objective import ClassifierObjective
from guided_diffusion.networks import AnyDenoiser
from guided_diffusion.processes.base import DiffusionProcess


@dataclass(frozen=True)
class HiddenClassifierConfig:
    """Architecture of :class:`HiddenStateClassifier` (``dim`` = the denoiser's width)."""

    dim: int
    num_outputs: int
    head: Head = "gaussian"
    hidden: int = 256
    output_names: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["output_names"] = list(self.output_names)
        return data


class HiddenStateClassifier(nn.Module):
    """``(h [B, L, D], t) -> ClassifierOutput`` (t is accepted for a common interface; h already encodes it)."""

    def __init__(self, cfg: HiddenClassifierConfig) -> None:
        super().__init__()
        self.config = cfg
        width = 2 * cfg.num_outputs if cfg.head == "gaussian" else cfg.num_outputs
        self.net = nn.Sequential(
            nn.LayerNorm(cfg.dim), nn.Linear(cfg.dim, cfg.hidden), nn.SiLU(), nn.Linear(cfg.hidden, width)
        )

    def forward(self, h: Tensor, t: Tensor) -> ClassifierOutput:
        out = self.net(h.mean(dim=1)).float()
        if self.config.head == "categorical":
            return ClassifierOutput(logits=out)
        mean, log_var = out.chunk(2, dim=-1)
        return ClassifierOutput(mean=mean, log_var=log_var.clamp(-10.0, 10.0))


class HiddenStateObjective(ClassifierObjective):
    """The noisy-classifier loss on ``denoiser.hidden_states(xt, t)`` instead of ``xt`` (denoiser frozen)."""

    def __init__(self, process: DiffusionProcess, denoiser: AnyDenoiser, *, head: str, output_names: list[str]) -> None:
        super().__init__(process, head=head, output_names=output_names)
        self.denoiser = denoiser.eval()
        for p in self.denoiser.parameters():
            p.requires_grad_(False)

    def _model_input(self, xt: Tensor, t: Tensor) -> Tensor:
        self.denoiser.to(xt.device)
        with torch.no_grad():
            return self.denoiser.hidden_states(xt, t, None)[0]


AnyClassifier = NoisyClassifier | HiddenStateClassifier
