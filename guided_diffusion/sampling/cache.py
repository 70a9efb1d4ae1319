"""Denoiser evaluation for the sampler, with per-row reuse of outputs across steps.

When the denoiser does not see t, its output only changes when its input changes, so rows whose tokens did
not change since the last evaluation reuse it (MDLM's caching; it is tied to ``time_conditioned``, a
pitfall of the reference code).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from guided_diffusion.conditioning import Condition, concat_conditions
from guided_diffusion.networks.passes import row_slices, rows_per_pass
from guided_diffusion.processes.base import DiffusionProcess


class DenoiserCache:
    """Evaluates ``process.clean_log_probs(denoiser(xt, t, cond))`` for several conditions at once.

    Args:
        denoiser: the network; must expose ``time_conditioned`` and ``config.num_properties``.
        process: the noise process (turns logits into clean log-probabilities).
        dtype: dtype of the returned log-probabilities (float64 for a float64 posterior).
        reuse: reuse outputs of unchanged rows (only honoured when the network ignores t).
        temperature: the denoiser's logits are divided by it before they become clean-token probabilities
            (1 = the model as trained; below 1 sharpens every position's prediction).
    """

    def __init__(
        self,
        denoiser: nn.Module,
        process: DiffusionProcess,
        *,
        dtype: torch.dtype = torch.float32,
        reuse: bool = True,
        temperature: float = 1.0,
    ) -> None:
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.denoiser = denoiser
        self.temperature = float(temperature)
        self.process = process
        self.dtype = dtype
        self.reuse = reuse and not bool(getattr(denoiser, "time_conditioned", True))
        self.num_properties = int(getattr(getattr(denoiser, "config", None), "num_properties", 0))
        self.nfe = 0  # network forward calls
        self.rows_evaluated = 0  # rows passed through the network, over all calls
        self._entries: dict[int, tuple[Condition | None, Tensor, Tensor]] = {}

    def tempered_clean_log_probs(self, logits: Tensor, xt: Tensor) -> Tensor:
        """Clean-token log-probabilities ``[B, L, S]`` of denoiser ``logits`` at this sampler's temperature
        (half-precision logits of an autocast pass are taken to float32 first)."""
        if logits.dtype in (torch.bfloat16, torch.float16):
            logits = logits.float()
        return self.process.clean_log_probs(logits / self.temperature, xt)

    def clean_log_probs(self, conditions: Sequence[Condition | None], xt: Tensor, t: float) -> list[Tensor]:
        """Clean-token log-probabilities ``[B, L, S]`` of ``xt`` under each condition, in one network pass."""
        batch = xt.shape[0]
        stale: list[Tensor] = []
        for cond in conditions:
            entry = self._entries.get(_key(cond))
            if self.reuse and entry is not None and entry[1].shape == xt.shape:
                stale.append((entry[1] != xt).any(dim=-1))  # [B]
            else:
                stale.append(torch.ones(batch, dtype=torch.bool, device=xt.device))
        counts = [int(m.sum()) for m in stale]
        if sum(counts):
            xs = torch.cat([xt[m] for m in stale])  # [sum(counts), L]
            conds = [None if c is None else c.expand(batch).select(m) for c, m in zip(conditions, stale, strict=True)]
            cond = concat_conditions(conds, counts, num_properties=self.num_properties, device=xt.device)
            times = torch.full((xs.shape[0],), float(t), device=xt.device)
            with torch.no_grad():
                # on a CPU in slices that keep the activations in cache (same outputs; see networks.passes)
                parts = [
                    self.denoiser(xs[rows], times[rows], cond.select(rows))
                    for rows in row_slices(xs.shape[0], rows_per_pass(xs.device, xs.shape[1]))
                ]
            logits = parts[0] if len(parts) == 1 else torch.cat(parts)
            fresh = self.tempered_clean_log_probs(logits.to(self.dtype), xs).split(counts)
            self.nfe += 1
            self.rows_evaluated += xs.shape[0]
        else:
            fresh = tuple(torch.empty(0) for _ in counts)
        outputs = []
        for cond, mask, new in zip(conditions, stale, fresh, strict=True):
            entry = self._entries.get(_key(cond))
            if bool(mask.all()) or entry is None:
                out = new
            elif not bool(mask.any()):
                out = entry[2]
            else:
                out = entry[2].clone()
                out[mask] = new
            self._entries[_key(cond)] = (cond, xt.clone(), out)
            outputs.append(out)
        return outputs

    def null_hidden_states(self, xt: Tensor, t: float) -> tuple[Tensor, Tensor, Tensor]:
        """The denoiser's final hidden states ``[B, L, D]`` and conditioning ``[B, D]`` at ``xt`` under the null
        condition, and the clean-token log-probabilities of its output layer, from one network pass; recorded
        as the null condition's output, as :meth:`clean_log_probs` records it, so that guidance perturbing the
        hidden states (NOS, PPLM) needs no second pass. The denoiser must expose ``hidden_states`` and
        ``head``."""
        times = torch.full((xt.shape[0],), float(t), device=xt.device)
        with torch.no_grad():
            h, c = self.denoiser.hidden_states(xt, times, None)  # type: ignore[operator]
            logits = self.denoiser.head(h, c)  # type: ignore[operator]
        out = self.tempered_clean_log_probs(logits.to(self.dtype), xt)
        self.nfe += 1
        self.rows_evaluated += xt.shape[0]
        self._entries[_key(None)] = (None, xt.clone(), out)
        return h, c, out


def _key(cond: Condition | None) -> int:
    return 0 if cond is None else id(cond)
