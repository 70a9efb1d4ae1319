"""NOS-style hidden-state guidance on a small random denoiser: zero optimiser steps is unguided, and the
guidance scale sets how far the samples move, for both diffusion processes."""

from __future__ import annotations

import pytest
import torch

from guided_diffusion.guidance.hidden import HiddenStateGuidance
from guided_diffusion.networks import Denoiser, DenoiserConfig
from guided_diffusion.processes import MaskedProcess, UniformProcess
from guided_diffusion.sampling import sample
from guided_diffusion.schedules import LogLinearSchedule

VOCAB, LENGTH = 6, 8


def prefer_token_zero(x0_hat: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """log of the mean predicted probability of token 0 over positions: [B]."""
    return torch.log(x0_hat[..., 0].mean(dim=1))


def draw(process, denoiser, guidance):
    gen = torch.Generator().manual_seed(0)
    return sample(process, denoiser, num_samples=128, length=LENGTH, steps=8, guidance=guidance, generator=gen).tokens


def random_denoiser(cls, seed):
    """A process of class ``cls`` and a small denoiser with random weights (the zero-initialised output
    layers would hide h from the logits)."""
    torch.manual_seed(seed)
    process = cls(VOCAB, LogLinearSchedule())
    denoiser = Denoiser(DenoiserConfig(num_states=process.num_states, seq_len=LENGTH, dim=32, depth=1, heads=4)).eval()
    with torch.no_grad():
        for param in denoiser.parameters():
            param.normal_(0.0, 0.2)
    return process, denoiser


@pytest.mark.parametrize("cls", [MaskedProcess, UniformProcess])
def test_the_guidance_scale_sets_how_far_samples_move(cls):
    process, denoiser = random_denoiser(cls, 0)
    plain = draw(process, denoiser, None)
    none = HiddenStateGuidance(denoiser, prefer_token_zero, guidance_scale=5.0, steps=0)
    assert torch.equal(draw(process, denoiser, none), plain)
    shares = [
        float(
            (draw(process, denoiser, HiddenStateGuidance(denoiser, prefer_token_zero, guidance_scale=g)) == 0)
            .double()
            .mean()
        )
        for g in (0.5, 5.0)
    ]
    base = float((plain == 0).double().mean())
    # a larger scale moves further: with no KL term, Adagrad's normalised steps would make both the same
    assert shares[1] > shares[0] + 0.02 and shares[1] > base, (base, shares)


@pytest.mark.parametrize("cls", [MaskedProcess, UniformProcess])
def test_the_sampling_temperature_reaches_the_hidden_state_optimisation(cls):
    """Temperature 1/2 equals a denoiser whose output layer is doubled (exact in floating point), with the
    guidance optimising through that layer too."""
    import copy

    process, denoiser = random_denoiser(cls, 1)
    with torch.no_grad():
        twin = copy.deepcopy(denoiser)
        twin.out.weight.mul_(2.0)
        twin.out.bias.mul_(2.0)

    def run(model, temperature):
        guidance = HiddenStateGuidance(model, prefer_token_zero, guidance_scale=2.0)
        gen = torch.Generator().manual_seed(0)
        return sample(
            process,
            model,
            num_samples=64,
            length=LENGTH,
            steps=6,
            guidance=guidance,
            generator=gen,
            temperature=temperature,
        ).tokens

    assert torch.equal(run(denoiser, 0.5), run(twin, 1.0))
    assert not torch.equal(run(denoiser, 0.5), run(denoiser, 1.0))


@pytest.mark.parametrize("cls", [MaskedProcess, UniformProcess])
def test_one_network_pass_per_step_gives_the_hidden_states_and_the_unguided_transition(cls):
    """Guidance on the sampler's own denoiser reuses the step's pass; on a copy of it, it makes its own pass
    (two per step), and both draw the same samples."""
    import copy

    process, denoiser = random_denoiser(cls, 2)
    twin = copy.deepcopy(denoiser)
    passes = {"denoiser": 0, "twin": 0}

    def counted(name, model):
        inner = model.hidden_states

        def hidden_states(*args, **kwargs):
            passes[name] += 1
            return inner(*args, **kwargs)

        model.hidden_states = hidden_states

    counted("denoiser", denoiser)
    counted("twin", twin)
    shared = draw(process, denoiser, HiddenStateGuidance(denoiser, prefer_token_zero, guidance_scale=2.0))
    assert passes == {"denoiser": 8, "twin": 0}
    separate = draw(process, denoiser, HiddenStateGuidance(twin, prefer_token_zero, guidance_scale=2.0))
    assert passes == {"denoiser": 16, "twin": 8}
    assert torch.equal(shared, separate)
