"""The remasking reverse step of masked diffusion (ReMDM): marginals, bounds, options and the sampler."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from guided_diffusion.conditioning import Condition
from guided_diffusion.guidance import ClassifierFreeGuidance, ClassifierGuidance
from guided_diffusion.processes import LOG_FLOOR, MaskedProcess, Remasking, UniformProcess
from guided_diffusion.sampling import sample
from guided_diffusion.schedules import CosineSchedule, LogLinearSchedule
from tests.guided_diffusion.fakes import TableDenoiser
from tests.guided_diffusion.test_classifier_guidance import LogSigmoidScorer

REMASKINGS = [Remasking("cap", 0.05), Remasking("cap", 1.0), Remasking("rescale", 0.5), Remasking("rescale", 1.0)]
STEPS = [(1.0, 0.9), (0.6, 0.5), (0.3, 0.05), (0.02, 0.0)]


def alphas(process: MaskedProcess, t: float, s: float) -> tuple[float, float]:
    a = process.schedule.alpha(torch.tensor([t, s], dtype=torch.float64))
    return float(a[0]), float(a[1])


@pytest.mark.parametrize("remasking", REMASKINGS)
@pytest.mark.parametrize("schedule", [LogLinearSchedule, CosineSchedule])
@pytest.mark.parametrize(("t", "s"), STEPS)
def test_the_step_keeps_the_forward_marginals(remasking, schedule, t, s):
    """With x_theta = x0, a position distributed as q(xt | x0) (x0 with alpha_t, else the mask) lands on
    q(xs | x0): x0 with alpha_s, the mask with 1 - alpha_s, whatever sigma_t."""
    process = MaskedProcess(5, schedule()).with_remasking(remasking)
    x0 = 3
    xt = torch.tensor([[x0, process.mask_id]])
    clean = torch.full((1, 2, process.num_states), LOG_FLOOR, dtype=torch.float64)
    clean[..., x0] = 0.0
    rev = process.reverse_log_probs(clean, xt, t, s).exp()[0]  # rows: from x0, from the mask
    torch.testing.assert_close(rev.sum(-1), torch.ones(2, dtype=torch.float64))
    a_t, a_s = alphas(process, t, s)
    reached = a_t * rev[0] + (1.0 - a_t) * rev[1]
    expected = torch.zeros(process.num_states, dtype=torch.float64)
    expected[x0], expected[process.mask_id] = a_s, 1.0 - a_s
    torch.testing.assert_close(reached, expected, atol=1e-12, rtol=1e-9)


@pytest.mark.parametrize("remasking", REMASKINGS)
def test_sigma_follows_its_strategy_and_vanishes_at_the_last_step(remasking):
    process = MaskedProcess(5, LogLinearSchedule())
    for t, s in STEPS:
        a_t, a_s = alphas(process, t, s)
        sigma_max = min(1.0, (1.0 - a_s) / a_t)
        want = min(remasking.eta, sigma_max) if remasking.strategy == "cap" else remasking.eta * sigma_max
        got = float(remasking.sigma(torch.tensor(a_t, dtype=torch.float64), torch.tensor(a_s, dtype=torch.float64)))
        assert got == pytest.approx(want, abs=1e-12)
        assert 0.0 <= got <= sigma_max + 1e-12
    assert float(remasking.sigma(torch.tensor(0.9), torch.tensor(1.0))) == 0.0


def test_unmasked_tokens_are_masked_again_at_rate_sigma():
    process = MaskedProcess(5, LogLinearSchedule())
    remasking = Remasking("cap", 0.1)
    xt = torch.tensor([[1, process.mask_id, 4]])
    gen = torch.Generator().manual_seed(0)
    clean = process.clean_log_probs(torch.randn(1, 3, process.num_states, generator=gen, dtype=torch.float64), xt)
    plain = process.reverse_log_probs(clean, xt, 0.5, 0.4).exp()[0]
    rev = process.with_remasking(remasking).reverse_log_probs(clean, xt, 0.5, 0.4).exp()[0]
    a_t, a_s = alphas(process, 0.5, 0.4)
    sigma = min(0.1, (1.0 - a_s) / a_t)
    for pos, token in ((0, 1), (2, 4)):
        assert float(plain[pos, token]) == 1.0
        assert float(rev[pos, token]) == pytest.approx(1.0 - sigma)
        assert float(rev[pos, process.mask_id]) == pytest.approx(sigma)
    # a masked position unmasks more often, toward the same clean-token distribution
    assert float(rev[1, : process.vocab_size].sum()) > float(plain[1, : process.vocab_size].sum())
    torch.testing.assert_close(
        rev[1, : process.vocab_size] / rev[1, : process.vocab_size].sum(),
        plain[1, : process.vocab_size] / plain[1, : process.vocab_size].sum(),
    )


def test_no_remasking_is_the_mdlm_step_and_keeps_the_process_identity():
    process = MaskedProcess(5, LogLinearSchedule())
    xt = torch.tensor([[1, process.mask_id, 4, process.mask_id]])
    clean = process.clean_log_probs(torch.randn(1, 4, process.num_states, dtype=torch.float64), xt)
    plain = process.reverse_log_probs(clean, xt, 0.5, 0.4)
    torch.testing.assert_close(
        process.with_remasking(Remasking("cap", 0.0)).reverse_log_probs(clean, xt, 0.5, 0.4), plain
    )
    remasked = process.with_remasking(Remasking("rescale", 1.0))
    assert remasked.same_noise_as(process) and process.same_noise_as(remasked)
    assert remasked.to_json() == process.to_json()
    assert process.remasking is None, "with_remasking must not change the original process"


@pytest.mark.parametrize(
    ("text", "want"),
    [("none", None), ("cap:0.02", Remasking("cap", 0.02)), ("rescale:1", Remasking("rescale", 1.0))],
)
def test_parse(text, want):
    assert Remasking.parse(text) == want


@pytest.mark.parametrize("text", ["cap", "cap:", "cap:x", "cap:1.5", "rescale:-0.1", "loop:0.1", "cap:nan"])
def test_parse_rejects_bad_options(text):
    with pytest.raises(ValueError, match="remasking must be"):
        Remasking.parse(text)


def test_only_the_masked_process_remasks():
    process = UniformProcess(5, LogLinearSchedule())
    assert process.with_remasking(None) is process
    denoiser = TableDenoiser(process.num_states, 4, time_conditioned=True)
    with pytest.raises(ValueError, match="masked"):
        sample(process, denoiser, num_samples=2, length=4, steps=2, remasking=Remasking("cap", 0.1))


class PositionDenoiser(nn.Module):
    """Logits that depend only on the position: the exact denoiser of data whose positions are independent
    with distributions softmax(table[l]) over the data tokens."""

    def __init__(self, table: Tensor) -> None:
        super().__init__()
        self.table = nn.Parameter(table)
        self.time_conditioned = False

    def forward(self, xt: Tensor, t: Tensor, cond: Condition | None = None) -> Tensor:
        return self.table.expand(xt.shape[0], -1, -1)


@pytest.mark.parametrize("remasking", [None, Remasking("cap", 0.5), Remasking("rescale", 1.0)])
def test_with_the_exact_denoiser_samples_follow_the_data(remasking):
    process = MaskedProcess(4, LogLinearSchedule())
    table = torch.randn(3, process.num_states, generator=torch.Generator().manual_seed(1))
    out = sample(
        process,
        PositionDenoiser(table),
        num_samples=6000,
        length=3,
        steps=8,
        generator=torch.Generator().manual_seed(0),
        remasking=remasking,
    )
    assert bool((out.tokens < process.vocab_size).all()), "a mask survived"
    freq = torch.stack([torch.bincount(out.tokens[:, pos], minlength=4) for pos in range(3)]).double() / 6000
    want = torch.softmax(table[:, : process.vocab_size].double(), dim=-1)
    assert float((freq - want).abs().max()) < 0.025


def test_remasking_changes_draws_under_every_guidance_and_leaves_no_mask():
    process = MaskedProcess(6, LogLinearSchedule())
    denoiser = TableDenoiser(process.num_states, 5)
    cbg = ClassifierGuidance(LogSigmoidScorer(5, process.num_states, seed=2), guidance_scale=2.0, upper_bound=0.0)
    cfg = ClassifierFreeGuidance(Condition(labels=torch.tensor([1])), guidance_scale=2.0)
    kw = {"num_samples": 40, "length": 5, "steps": 12, "posterior_dtype": torch.float64}
    for guidance in (None, cfg, cbg):
        tokens = [
            sample(
                process, denoiser, guidance=guidance, generator=torch.Generator().manual_seed(4), remasking=r, **kw
            ).tokens
            for r in (Remasking("cap", 0.3), None)
        ]
        assert bool((tokens[0] < process.vocab_size).all()), "a mask survived"
        assert not torch.equal(tokens[0], tokens[1])
