"""Training objective of noisy classifiers: corrupt x0 with the *same* process object the denoiser uses,
then fit p(y | xt, t): Gaussian negative log-likelihood for regressors, cross-entropy for classifiers.
Validation reports the error in bins of t."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from classifiers.network import ClassifierOutput
from guided_diffusion.data import TokenDataset
from guided_diffusion.processes.base import DiffusionProcess

T_BINS = (0.0, 0.25, 0.5, 0.75, 1.0)


def gaussian_nll(out: ClassifierOutput, target: Tensor) -> Tensor:
    """Mean Gaussian negative log-likelihood over the present (non-NaN) targets ``[B, P]``."""
    assert out.mean is not None and out.log_var is not None
    present = ~torch.isnan(target)
    y = torch.where(present, target, out.mean.detach())
    nll = 0.5 * (out.log_var + (y - out.mean) ** 2 / out.log_var.exp() + math.log(2 * math.pi))
    return (nll * present).sum() / present.sum().clamp_min(1)


class ClassifierObjective:
    """Noisy-classifier loss.

    Args:
        process: the noise process of the denoiser this classifier will guide.
        head: ``gaussian`` (targets = the dataset's property values) or ``categorical`` (its labels).
        output_names: names used in validation metrics.
    """

    def __init__(self, process: DiffusionProcess, *, head: str, output_names: list[str]) -> None:
        self.process = process
        self.head = head
        self.output_names = output_names

    def _targets(self, batch: TokenDataset) -> Tensor:
        if self.head == "categorical":
            if batch.labels is None:
                raise ValueError("a categorical classifier needs a dataset with labels")
            return batch.labels
        if batch.values is None:
            raise ValueError("a regressor needs a dataset with property values")
        return batch.values

    def _loss(self, out: ClassifierOutput, y: Tensor) -> Tensor:
        if self.head == "categorical":
            assert out.logits is not None
            return F.cross_entropy(out.logits, y)
        return gaussian_nll(out, y)

    def _model_input(self, xt: Tensor, t: Tensor) -> Tensor:
        """What the classifier reads: the noisy tokens themselves."""
        return xt

    def loss(self, model: nn.Module, batch: TokenDataset, generator: torch.Generator) -> Tensor:
        t = self.process.sample_times(len(batch), generator=generator, device=batch.tokens.device)
        xt = self.process.corrupt(batch.tokens, t, generator=generator)
        return self._loss(model(self._model_input(xt, t), t), self._targets(batch))

    def tokens_per_example(self, batch: TokenDataset) -> int:
        return batch.seq_len

    @torch.no_grad()
    def evaluate(
        self, model: nn.Module, data: TokenDataset, *, batch_size: int, seed: int, bins: Sequence[float] = T_BINS
    ) -> dict[str, float]:
        """Loss over all t, and per t bin (edges ``bins``) the RMSE of each output (regressor, normalised
        units) or the accuracy (classifier)."""
        was_training = model.training
        model.eval()
        device = next(model.parameters()).device
        gen = torch.Generator(device=device).manual_seed(seed)
        metrics: dict[str, float] = {}
        total_loss, total_rows = 0.0, 0
        for lo, hi in itertools.pairwise(bins):
            sq = torch.zeros(len(self.output_names), device=device)
            count = torch.zeros(len(self.output_names), device=device)
            correct, rows = 0.0, 0
            for start in range(0, len(data), batch_size):
                batch = data.subset(slice(start, start + batch_size))
                x0, y = batch.tokens.to(device), self._targets(batch).to(device)
                t = lo + (hi - lo) * torch.rand(len(batch), generator=gen, device=device)
                out = model(self._model_input(self.process.corrupt(x0, t, generator=gen), t), t)
                total_loss += float(self._loss(out, y)) * len(batch)
                total_rows += len(batch)
                if self.head == "categorical":
                    correct += float((out.logits.argmax(-1) == y).sum())
                    rows += len(batch)
                else:
                    present = ~torch.isnan(y)
                    sq += torch.where(present, (out.mean - y) ** 2, torch.zeros_like(y)).sum(0)
                    count += present.sum(0)
            tag = f"t{lo:.2f}-{hi:.2f}"
            if self.head == "categorical":
                metrics[f"val_accuracy/{tag}"] = correct / max(rows, 1)
            else:
                for j, name in enumerate(self.output_names):
                    metrics[f"val_rmse/{name}/{tag}"] = float((sq[j] / count[j].clamp_min(1)).sqrt())
        metrics["val_loss"] = total_loss / max(total_rows, 1)
        model.train(was_training)
        return metrics
