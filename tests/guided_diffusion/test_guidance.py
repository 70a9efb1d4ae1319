"""Contract tests for the guidance hook and D-CFG on both processes."""

from __future__ import annotations

import pytest
import torch

from guided_diffusion.conditioning import Condition
from guided_diffusion.guidance import ClassifierFreeGuidance, Guidance, GuidanceStep, NoGuidance, apply_log_weights
from guided_diffusion.processes import LOG_FLOOR, MaskedProcess, UniformProcess
from guided_diffusion.sampling import DenoiserCache
from guided_diffusion.schedules import LogLinearSchedule
from tests.guided_diffusion.fakes import TableDenoiser

PROCESSES = [MaskedProcess, UniformProcess]


def setup(cls, *, batch: int = 6, length: int = 5, t: float = 0.6, s: float = 0.45, dtype=torch.float64):
    process = cls(5, LogLinearSchedule())
    denoiser = TableDenoiser(process.num_states, length, time_conditioned=cls is UniformProcess)
    x0 = torch.randint(0, 5, (batch, length), generator=torch.Generator().manual_seed(0))
    xt = process.corrupt(x0, torch.full((batch,), t), generator=torch.Generator().manual_seed(1))
    cache = DenoiserCache(denoiser, process, dtype=dtype)
    return process, denoiser, GuidanceStep(process, cache, xt, t, s), cache


@pytest.mark.parametrize("cls", PROCESSES)
def test_no_guidance_is_the_reverse_process(cls):
    _, _, step, _ = setup(cls)
    out = NoGuidance()(step)
    torch.testing.assert_close(out, step.reverse_log_probs(None))
    torch.testing.assert_close(out.exp().sum(-1), torch.ones(out.shape[:2], dtype=out.dtype))


@pytest.mark.parametrize("cls", PROCESSES)
@pytest.mark.parametrize("scale", [0.0, 0.5, 1.0, 2.0, 5.0])
def test_cfg_gives_normalised_probabilities_with_the_unguided_support(cls, scale):
    process, _, step, _ = setup(cls)
    cond = Condition(labels=torch.tensor([1]))
    out = ClassifierFreeGuidance(cond, guidance_scale=scale)(step)
    assert out.shape == (6, 5, process.num_states)
    torch.testing.assert_close(out.exp().sum(-1), torch.ones(6, 5, dtype=out.dtype))
    base = step.reverse_log_probs(None)
    assert bool(((base <= 0.5 * LOG_FLOOR) <= (out <= 0.5 * LOG_FLOOR)).all()), "guidance must not add support"


@pytest.mark.parametrize("cls", PROCESSES)
def test_cfg_scale_zero_is_unconditional_and_one_is_conditional(cls):
    _, _, step, _ = setup(cls)
    cond = Condition(labels=torch.tensor([1]))
    zero = ClassifierFreeGuidance(cond, guidance_scale=0.0)(step)
    assert torch.equal(zero, step.reverse_log_probs(None)), "scale 0 must equal unconditional exactly"
    one = ClassifierFreeGuidance(cond, guidance_scale=1.0)(step)
    torch.testing.assert_close(one, step.reverse_log_probs(cond), atol=1e-10, rtol=0)
    torch.testing.assert_close(one, NoGuidance(cond)(step), atol=1e-10, rtol=0)


def test_masked_cfg_mixes_clean_predictions_and_keeps_the_unmasking_rate():
    process, _, step, _ = setup(MaskedProcess)
    cond = Condition(labels=torch.tensor([0]))
    g = 3.0
    out = ClassifierFreeGuidance(cond, guidance_scale=g)(step).exp()
    masked = step.xt == process.mask_id
    stay = step.reverse_log_probs(None).exp()[..., process.mask_id]
    torch.testing.assert_close(out[..., process.mask_id][masked], stay[masked])
    # data tokens follow softmax(g log x(c) + (1 - g) log x(null)), scaled by the unmasking probability
    mixed = torch.softmax(
        (g * step.clean_log_probs(cond) + (1 - g) * step.clean_log_probs(None))[..., : process.vocab_size], -1
    )
    expected = mixed * (1 - stay).unsqueeze(-1)
    torch.testing.assert_close(out[..., : process.vocab_size][masked], expected[masked])


def test_uniform_cfg_is_the_renormalised_geometric_mixture_of_posteriors():
    _, _, step, _ = setup(UniformProcess)
    cond = Condition(labels=torch.tensor([1]))
    g = 2.5
    out = ClassifierFreeGuidance(cond, guidance_scale=g)(step)
    expected = torch.log_softmax(g * step.reverse_log_probs(cond) + (1 - g) * step.reverse_log_probs(None), -1)
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize("cls", PROCESSES)
def test_cfg_runs_conditional_and_null_passes_as_one_batch(cls):
    _, denoiser, step, cache = setup(cls)
    ClassifierFreeGuidance(Condition(labels=torch.tensor([1])), guidance_scale=2.0)(step)
    assert denoiser.calls == 1 and cache.nfe == 1
    assert cache.rows_evaluated == 2 * step.xt.shape[0]


@pytest.mark.parametrize("cls", PROCESSES)
def test_cfg_at_scale_one_runs_only_the_conditional_pass(cls):
    _, _, step, cache = setup(cls)
    cond = Condition(labels=torch.tensor([1]))
    out = ClassifierFreeGuidance(cond, guidance_scale=1.0)(step)
    assert cache.rows_evaluated == step.xt.shape[0], "gamma = 1 needs no null pass"
    assert torch.equal(out, step.reverse_log_probs(cond))


@pytest.mark.parametrize("cls", PROCESSES)
@pytest.mark.parametrize(("interval", "inside"), [((0.5, 1.0), True), ((0.0, 0.6), True), ((0.0, 0.3), False)])
def test_cfg_interval_guides_inside_and_is_the_conditional_model_outside(cls, interval, inside):
    _, _, step, cache = setup(cls)  # t = 0.6
    cond = Condition(labels=torch.tensor([1]))
    out = ClassifierFreeGuidance(cond, guidance_scale=3.0, interval=interval)(step)
    if inside:
        _, _, fresh, _ = setup(cls)
        torch.testing.assert_close(out, ClassifierFreeGuidance(cond, guidance_scale=3.0)(fresh), atol=0, rtol=0)
        assert cache.rows_evaluated == 2 * step.xt.shape[0]
    else:
        assert torch.equal(out, step.reverse_log_probs(cond))
        assert cache.rows_evaluated == step.xt.shape[0], "a step outside the interval needs no null pass"


@pytest.mark.parametrize("interval", [(0.5, 0.5), (-0.1, 0.5), (0.2, 1.5), (0.8, 0.2)])
def test_cfg_rejects_an_interval_outside_the_unit_range(interval):
    with pytest.raises(ValueError, match="0 <= LO < HI <= 1"):
        ClassifierFreeGuidance(Condition(labels=torch.tensor([0])), guidance_scale=2.0, interval=interval)


class _Weights(Guidance):
    def __init__(self, weights: torch.Tensor) -> None:
        self.weights = weights

    def log_weights(self, step, base):
        return self.weights


@pytest.mark.parametrize("cls", PROCESSES)
def test_a_user_term_plugs_in_without_sampler_changes(cls):
    process, _, step, _ = setup(cls)
    weights = torch.randn(6, 5, process.num_states, dtype=torch.float64)
    out = _Weights(weights)(step)
    base = step.reverse_log_probs(None)
    torch.testing.assert_close(out, apply_log_weights(base, weights))
    manual = torch.where(base > 0.5 * LOG_FLOOR, base + weights, torch.tensor(float("-inf"), dtype=base.dtype))
    torch.testing.assert_close(out, torch.log_softmax(manual, -1).clamp_min(LOG_FLOOR))


def test_cfg_rejects_negative_scale():
    with pytest.raises(ValueError, match="guidance_scale"):
        ClassifierFreeGuidance(Condition(labels=torch.tensor([0])), guidance_scale=-1.0)
