"""Contract tests for classifier-based guidance (exact and first-order), composition and custom scorers."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from guided_diffusion.conditioning import Condition
from guided_diffusion.guidance import (
    ClassifierFreeGuidance,
    ClassifierGuidance,
    ComposedGuidance,
    NoGuidance,
    apply_log_weights,
    custom_guidance,
)
from guided_diffusion.processes import MaskedProcess, Remasking, UniformProcess
from guided_diffusion.sampling import sample
from tests.guided_diffusion.test_guidance import setup

PROCESSES = [MaskedProcess, UniformProcess]


class LinearScorer(nn.Module):
    """log p(y | x) = sum_l W[l, x_l] + b(t): linear in the one-hot input."""

    def __init__(self, length: int, states: int, seed: int = 0) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.weight = nn.Parameter(torch.randn(length, states, generator=gen, dtype=torch.float64))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.long:
            x = F.one_hot(x, self.weight.shape[1]).double()
        return (x.double() * self.weight).sum(dim=(1, 2)) + 0.3 * t.double()


class QuadraticScorer(LinearScorer):
    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return -0.5 * super().forward(x, t) ** 2


@pytest.mark.parametrize("cls", PROCESSES)
@pytest.mark.parametrize("mode", ["exact", "first-order"])
def test_scale_zero_equals_unguided_exactly(cls, mode):
    process, _, step, _ = setup(cls)
    out = ClassifierGuidance(LinearScorer(5, process.num_states), guidance_scale=0.0, mode=mode)(step)
    assert torch.equal(out, NoGuidance()(step))


@pytest.mark.parametrize("cls", PROCESSES)
def test_exact_and_first_order_agree_for_a_linear_classifier(cls):
    process, _, step, _ = setup(cls)
    scorer = LinearScorer(5, process.num_states)
    exact = ClassifierGuidance(scorer, guidance_scale=2.0, mode="exact")(step)
    first = ClassifierGuidance(scorer, guidance_scale=2.0, mode="first-order")(step)
    torch.testing.assert_close(exact, first, atol=1e-9, rtol=1e-9)


@pytest.mark.parametrize("cls", PROCESSES)
def test_exact_guidance_matches_brute_force(cls):
    process, _, step, _ = setup(cls)
    scorer = QuadraticScorer(5, process.num_states, seed=3)
    g = 1.5
    out = ClassifierGuidance(scorer, guidance_scale=g, mode="exact", max_rows=7)(step).exp()
    base = NoGuidance()(step).exp()
    t = torch.full((1,), step.t)
    for b in range(step.xt.shape[0]):
        for pos in range(step.xt.shape[1]):
            weights = torch.zeros(process.num_states, dtype=torch.float64)
            for v in range(process.num_states):
                changed = step.xt[b : b + 1].clone()
                changed[0, pos] = v
                weights[v] = base[b, pos, v] * torch.exp(g * scorer(changed, t))[0]
            torch.testing.assert_close(out[b, pos], weights / weights.sum(), atol=1e-9, rtol=1e-7)


class LogSigmoidScorer(LinearScorer):
    """log sigmoid of a linear score: a log-probability, so bounded above by 0."""

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return F.logsigmoid(super().forward(x, t))


@pytest.mark.parametrize(
    ("cls", "remasking"),
    [(MaskedProcess, None), (MaskedProcess, Remasking("cap", 0.3)), (UniformProcess, None)],
    ids=["masked", "masked-remasking", "uniform"],
)
@pytest.mark.parametrize("top_k", [None, 2])
@pytest.mark.parametrize("companion", [None, "cfg", "cbg", "unbounded cbg"])
def test_lazy_exact_draws_equal_scoring_every_candidate_with_fewer_calls(cls, remasking, top_k, companion):
    """Also when unmasked tokens may be masked again (remasking), so that staying is not the only move."""
    process, denoiser, _, _ = setup(cls)
    scorer, second = LogSigmoidScorer(5, process.num_states, seed=2), LogSigmoidScorer(5, process.num_states, seed=7)

    def run(lazy: bool):
        cbg = ClassifierGuidance(scorer, guidance_scale=2.0, top_k=top_k, upper_bound=0.0, lazy=lazy, max_rows=13)
        other = {
            "cfg": ClassifierFreeGuidance(Condition(labels=torch.tensor([1])), guidance_scale=1.5),
            "cbg": ClassifierGuidance(second, guidance_scale=1.0, top_k=3, upper_bound=0.0, lazy=lazy),
            "unbounded cbg": ClassifierGuidance(second, guidance_scale=1.0, lazy=lazy),
        }
        guidance = cbg if companion is None else ComposedGuidance(other[companion], cbg)
        out = sample(
            process,
            denoiser,
            num_samples=40,
            length=5,
            steps=6,
            guidance=guidance,
            generator=torch.Generator().manual_seed(4),
            posterior_dtype=torch.float64,
            remasking=remasking,
        )
        return out.tokens, cbg.classifier_calls

    full_tokens, full_calls = run(lazy=False)
    lazy_tokens, lazy_calls = run(lazy=True)
    assert torch.equal(lazy_tokens, full_tokens)
    assert lazy_calls < 0.8 * full_calls, (lazy_calls, full_calls)


def test_lazy_draws_need_a_bound_and_a_random_draw():
    scorer = LogSigmoidScorer(5, 6)
    assert not ClassifierGuidance(scorer, guidance_scale=2.0).draws_lazily(argmax=False)
    bounded = ClassifierGuidance(scorer, guidance_scale=2.0, upper_bound=0.0)
    assert bounded.draws_lazily(argmax=False)
    assert not bounded.draws_lazily(argmax=True)
    assert not ClassifierGuidance(scorer, guidance_scale=2.0, upper_bound=0.0, mode="first-order").draws_lazily(
        argmax=False
    )


def test_masked_guidance_keeps_unmasked_tokens_and_scores_staying_masked_with_xt():
    process, _, step, _ = setup(MaskedProcess)
    scorer = QuadraticScorer(5, process.num_states)
    guidance = ClassifierGuidance(scorer, guidance_scale=3.0)
    out = guidance(step).exp()
    unmasked = step.xt != process.mask_id
    kept = out.gather(-1, step.xt.unsqueeze(-1)).squeeze(-1)
    assert bool((kept[unmasked] == 1.0).all())
    scores = guidance.candidate_scores(step, NoGuidance()(step))
    current = scorer(step.xt, torch.full((step.xt.shape[0],), step.t))
    masked_rows = (~unmasked).nonzero(as_tuple=True)
    torch.testing.assert_close(scores[..., process.mask_id][masked_rows], current[masked_rows[0]])


def test_top_k_scores_only_the_most_likely_changes():
    process, _, step, _ = setup(UniformProcess)
    base = NoGuidance()(step)
    guidance = ClassifierGuidance(LinearScorer(5, process.num_states), top_k=2)
    scores = guidance.candidate_scores(step, base)
    finite = torch.isfinite(scores).sum(-1)
    assert bool((finite == 3).all()), "the current token plus the top-2 changes"
    masked_base = base.scatter(-1, step.xt.unsqueeze(-1), float("-inf"))
    top = masked_base.topk(2, dim=-1).indices
    assert bool(torch.isfinite(scores.gather(-1, top)).all())


@pytest.mark.parametrize("cls", PROCESSES)
def test_composition_equals_summed_log_weights(cls):
    process, _, step, _ = setup(cls)
    cfg = ClassifierFreeGuidance(Condition(labels=torch.tensor([1])), guidance_scale=2.0)
    cbg = ClassifierGuidance(QuadraticScorer(5, process.num_states), guidance_scale=1.5)
    both = ComposedGuidance(cfg, cbg)(step)
    base = step.reverse_log_probs(None)
    summed = cfg.log_weights(step, base) + cbg.log_weights(step, base)
    torch.testing.assert_close(both, apply_log_weights(base, summed))


def test_composition_requires_a_common_base():
    with pytest.raises(ValueError, match="base condition"):
        ComposedGuidance(NoGuidance(Condition(labels=torch.tensor([0]))), NoGuidance())


def test_custom_scorers():
    process, _, step, _ = setup(UniformProcess)

    def count_zeros(tokens: torch.Tensor) -> torch.Tensor:
        return (tokens == 0).sum(-1).double()

    exact = custom_guidance(count_zeros, guidance_scale=1.0)(step)
    module = custom_guidance(LinearScorer(5, process.num_states), takes_time=True)
    assert module.mode.value == "first-order"
    module(step)
    with pytest.raises(ValueError, match="differentiable torch module"):
        custom_guidance(count_zeros, mode="first-order")
    with pytest.raises(ValueError, match="shape"):
        custom_guidance(lambda x: x.sum(-1, keepdim=True).double())(step)
    # the guided transition favours token 0 wherever it can be reached
    assert bool((exact.exp()[..., 0] >= NoGuidance()(step).exp()[..., 0] - 1e-12).all())


@pytest.mark.parametrize("cls", PROCESSES)
def test_fixed_positions_never_change_under_classifier_guidance(cls):
    process, denoiser, _, _ = setup(cls)
    fixed = torch.zeros(8, 5, dtype=torch.bool)
    fixed[:, 1] = True
    tokens = torch.full((8, 5), 3)
    guidance = custom_guidance(lambda x: -(x == 3).sum(-1).double() * 5, guidance_scale=2.0)
    out = sample(
        process,
        denoiser,
        num_samples=8,
        length=5,
        steps=10,
        guidance=guidance,
        generator=torch.Generator().manual_seed(0),
        fixed_mask=fixed,
        fixed_tokens=tokens,
    )
    assert bool((out.tokens[:, 1] == 3).all())
    assert float((out.tokens[:, [0, 2, 3, 4]] == 3).double().mean()) < 0.05, "guidance avoids token 3 elsewhere"


def test_probability_targets_carry_the_bound_zero_and_a_bare_density_none():
    from classifiers.network import ClassifierConfig, NoisyClassifier
    from classifiers.scoring import class_target, gaussian_target

    def net(head):
        torch.manual_seed(0)
        return NoisyClassifier(ClassifierConfig(6, 5, 2, head=head, dim=16, depth=1, heads=2)).eval()

    regressor, classifier = net("gaussian"), net("categorical")
    x, t = torch.randint(0, 6, (64, 5), generator=torch.Generator().manual_seed(1)), torch.rand(64)
    bounded = [
        gaussian_target(regressor, 0, ">=", -0.5),
        gaussian_target(regressor, 1, "<=", 0.2),
        gaussian_target(regressor, 0, "=", 0.0, half_width=0.3),
        class_target(classifier, 1),
    ]
    for fn in bounded:
        assert ClassifierGuidance(fn).upper_bound == 0.0
        with torch.no_grad():
            assert bool((fn(x, t) <= 0).all())
    assert ClassifierGuidance(gaussian_target(regressor, 0, "=", 0.0)).upper_bound is None
    assert ClassifierGuidance(class_target(classifier, 1), upper_bound=-1.0).upper_bound == -1.0
