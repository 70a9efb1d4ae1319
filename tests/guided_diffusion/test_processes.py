"""Contract and maths tests for both noise processes."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from guided_diffusion.processes import LOG_FLOOR, DiffusionProcess, MaskedProcess, UniformProcess
from guided_diffusion.schedules import CosineSchedule, LogLinearSchedule

PROCESSES = [MaskedProcess, UniformProcess]
SCHEDULES = [LogLinearSchedule, CosineSchedule]


def make(
    cls: type[DiffusionProcess], vocab: int = 6, schedule=LogLinearSchedule, eps: float = 1e-3, **kw
) -> DiffusionProcess:
    return cls(vocab, schedule(eps=eps), **kw)


def random_clean_log_probs(process: DiffusionProcess, xt: torch.Tensor, *, seed: int = 0, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    logits = 2.0 * torch.randn(*xt.shape, process.num_states, generator=gen, dtype=dtype)
    return process.clean_log_probs(logits, xt)


# --------------------------------------------------------------------------- schedules
@pytest.mark.parametrize("schedule", SCHEDULES)
def test_schedule_endpoints_and_derivative(schedule):
    sch = schedule(eps=1e-3)
    t = torch.linspace(0.01, 0.99, 50, dtype=torch.float64)
    assert float(sch.alpha(torch.tensor(0.0))) == pytest.approx(1.0)
    assert float(sch.alpha(torch.tensor(1.0, dtype=torch.float64))) == pytest.approx(1e-3)
    h = 1e-6
    numeric = (sch.alpha(t + h) - sch.alpha(t - h)) / (2 * h)
    torch.testing.assert_close(sch.alpha_prime(t), numeric, atol=1e-6, rtol=1e-5)
    assert bool((sch.alpha_prime(t) < 0).all())


def test_schedule_rejects_bad_eps():
    with pytest.raises(ValueError, match="eps"):
        LogLinearSchedule(eps=1.0)


# --------------------------------------------------------------------------- forward process
@pytest.mark.parametrize("cls", PROCESSES)
def test_corrupt_shapes_and_states(cls):
    process = make(cls)
    x0 = torch.randint(0, process.vocab_size, (32, 10))
    xt = process.corrupt(x0, torch.rand(32))
    assert xt.shape == x0.shape and xt.dtype == torch.long
    assert bool(((xt >= 0) & (xt < process.num_states)).all())
    if cls is UniformProcess:
        assert bool((xt < process.vocab_size).all()), "uniform noise must only draw data tokens"


@pytest.mark.parametrize("cls", PROCESSES)
def test_corrupt_keeps_a_token_with_probability_alpha(cls):
    process = make(cls, vocab=5)
    x0 = torch.randint(0, 5, (4000, 8))
    t = torch.full((4000,), 0.4)
    xt = process.corrupt(x0, t, generator=torch.Generator().manual_seed(1))
    alpha = float(process.schedule.alpha(torch.tensor(0.4)))
    # masked: kept with prob alpha; uniform: kept, or re-drawn equal to x0 (prob (1-alpha)/V)
    expected = alpha if cls is MaskedProcess else alpha + (1 - alpha) / 5
    assert float((xt == x0).double().mean()) == pytest.approx(expected, abs=0.01)


@pytest.mark.parametrize("cls", PROCESSES)
def test_t_equal_one_gives_the_prior(cls):
    process = make(cls, vocab=5, eps=0.0)  # alpha_1 = 0 exactly
    x0 = torch.zeros(20000, 4, dtype=torch.long)  # all-zero data: the prior must not remember it
    xt = process.corrupt(x0, torch.ones(20000), generator=torch.Generator().manual_seed(2))
    prior = process.prior(20000, 4, generator=torch.Generator().manual_seed(3), device=torch.device("cpu"))
    freq_t = torch.bincount(xt.flatten(), minlength=process.num_states).double() / xt.numel()
    freq_p = torch.bincount(prior.flatten(), minlength=process.num_states).double() / prior.numel()
    torch.testing.assert_close(freq_t, freq_p, atol=0.01, rtol=0)
    if cls is MaskedProcess:
        assert bool((prior == process.mask_id).all())
    else:
        torch.testing.assert_close(freq_p, torch.full((5,), 0.2, dtype=torch.float64), atol=0.01, rtol=0)


# --------------------------------------------------------------------------- reverse process
@pytest.mark.parametrize("cls", PROCESSES)
@pytest.mark.parametrize("schedule", SCHEDULES)
def test_reverse_probabilities_sum_to_one(cls, schedule):
    process = make(cls, schedule=schedule)
    xt = process.corrupt(torch.randint(0, 6, (8, 7)), torch.full((8,), 0.6))
    log_x = random_clean_log_probs(process, xt)
    for t, s in [(0.6, 0.5), (1.0, 0.97), (0.02, 0.0)]:
        rev = process.reverse_log_probs(log_x, xt, t, s)
        assert rev.shape == (8, 7, process.num_states)
        torch.testing.assert_close(rev.exp().sum(-1), torch.ones(8, 7, dtype=torch.float64))


def test_masked_reverse_keeps_unmasked_tokens_and_never_predicts_mask_at_zero():
    process = make(MaskedProcess)
    x0 = torch.randint(0, 6, (16, 9))
    xt = process.corrupt(x0, torch.full((16,), 0.5), generator=torch.Generator().manual_seed(0))
    log_x = random_clean_log_probs(process, xt)
    rev = process.reverse_log_probs(log_x, xt, 0.5, 0.3).exp()
    unmasked = xt != process.mask_id
    assert bool(unmasked.any()) and bool((~unmasked).any())
    kept = rev.gather(-1, xt.unsqueeze(-1)).squeeze(-1)
    assert bool((kept[unmasked] == 1.0).all()), "unmasked tokens must stay put"
    # masked positions: stay masked with (1 - alpha_s) / (1 - alpha_t)
    a_t, a_s = (float(process.schedule.alpha(torch.tensor(v))) for v in (0.5, 0.3))
    stay = rev[..., process.mask_id][~unmasked]
    torch.testing.assert_close(stay, torch.full_like(stay, (1 - a_s) / (1 - a_t)))
    final = process.reverse_log_probs(log_x, xt, 0.1, 0.0).exp()
    assert float(final[..., process.mask_id].max()) == 0.0, "no mask may survive the last step"


@pytest.mark.parametrize("cls", PROCESSES)
@pytest.mark.parametrize("schedule", SCHEDULES)
def test_reverse_posterior_with_clean_x0_is_bayes_rule(cls, schedule):
    """q(xs | xt, x0) from the closed form equals q(xt | xs) q(xs | x0) / q(xt | x0), brute force."""
    process = make(cls, vocab=4, schedule=schedule)
    n = process.num_states
    t, s = 0.7, 0.45
    a_t, a_s = (float(process.schedule.alpha(torch.tensor(v, dtype=torch.float64))) for v in (t, s))

    def transition(alpha: float) -> torch.Tensor:  # [from, to]
        if cls is MaskedProcess:
            m = torch.eye(n, dtype=torch.float64) * alpha
            m[:, process.mask_id] += 1 - alpha
            m[process.mask_id] = 0.0
            m[process.mask_id, process.mask_id] = 1.0
            return m
        return alpha * torch.eye(n, dtype=torch.float64) + (1 - alpha) / n

    q_s0, q_ts = transition(a_s), transition(a_t / a_s)
    for x0 in range(process.vocab_size):
        for xt in range(n):
            joint = q_s0[x0] * q_ts[:, xt]  # over xs
            if joint.sum() == 0:
                continue
            bayes = joint / joint.sum()
            one_hot = torch.full((1, 1, n), LOG_FLOOR, dtype=torch.float64)
            one_hot[0, 0, x0] = 0.0
            xt_t = torch.tensor([[xt]])
            if cls is MaskedProcess and xt != process.mask_id:
                one_hot = process.clean_log_probs(torch.zeros(1, 1, n, dtype=torch.float64), xt_t)
            closed = process.reverse_log_probs(one_hot, xt_t, t, s).exp()[0, 0]
            torch.testing.assert_close(closed, bayes, atol=1e-9, rtol=1e-7)


# --------------------------------------------------------------------------- NELBO
@pytest.mark.parametrize("cls", PROCESSES)
@pytest.mark.parametrize("schedule", SCHEDULES)
def test_continuous_nelbo_is_the_limit_of_the_discrete_one(cls, schedule):
    """T * KL(q(xs|xt,x0) || p(xs|xt)) with s = t - 1/T tends to the closed-form integrand (rel. err < 1%)."""
    process = make(cls, vocab=7, schedule=schedule)
    gen = torch.Generator().manual_seed(0)
    x0 = torch.randint(0, 7, (64, 5), generator=gen)
    t = (0.01 + 0.98 * torch.rand(64, generator=gen)).double()
    xt = process.corrupt(x0, t, generator=gen)
    log_x = random_clean_log_probs(process, xt, seed=1)
    steps = 20_000
    cont = process.continuous_nelbo_terms(log_x, x0, xt, t)
    disc = steps * process.discrete_nelbo_terms(log_x, x0, xt, t, t - 1.0 / steps)
    rel = float((cont - disc).abs().sum() / cont.abs().sum())
    assert rel < 0.01, f"relative error {rel:.4f}"


@pytest.mark.parametrize("cls", PROCESSES)
@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), t=st.floats(0.001, 1.0), vocab=st.integers(2, 12))
def test_nelbo_terms_are_non_negative(cls, seed, t, vocab):
    process = make(cls, vocab=vocab)
    gen = torch.Generator().manual_seed(seed)
    x0 = torch.randint(0, vocab, (8, 6), generator=gen)
    times = torch.full((8,), t, dtype=torch.float64)
    xt = process.corrupt(x0, times, generator=gen)
    log_x = random_clean_log_probs(process, xt, seed=seed)
    assert float(process.continuous_nelbo_terms(log_x, x0, xt, times).min()) >= -1e-9
    s = torch.clamp(times - 0.1, min=0.0)
    assert float(process.discrete_nelbo_terms(log_x, x0, xt, times, s).min()) >= -1e-9


@pytest.mark.parametrize("cls", PROCESSES)
@pytest.mark.parametrize("loss_type", ["continuous", "discrete"])
def test_perfect_denoiser_on_deterministic_data_has_zero_loss(cls, loss_type):
    process = make(cls, loss_type=loss_type, num_timesteps=50)
    x0 = torch.randint(0, 6, (1, 12)).expand(32, -1)

    def perfect(xt, t):  # the only data sequence, with certainty
        return torch.full((*xt.shape, process.num_states), -1e4).scatter(-1, x0.unsqueeze(-1), 0.0)

    out = process.loss(perfect, x0, generator=torch.Generator().manual_seed(0))
    assert float(out.nelbo.abs().max()) < 1e-4  # float32 rounding only


@pytest.mark.parametrize("loss_type", ["continuous", "discrete"])
def test_masked_nelbo_of_the_bayes_denoiser_equals_the_entropy(loss_type):
    """With i.i.d. positions of law p and the exact posterior (p at masked positions), the masked NELBO
    equals L * H(p) * (1 - alpha_1): with alpha_1 = 0 it is the exact negative log-likelihood."""
    vocab, length = 5, 8
    p = torch.tensor([0.5, 0.2, 0.15, 0.1, 0.05], dtype=torch.float64)
    process = MaskedProcess(vocab, LogLinearSchedule(eps=0.0), loss_type=loss_type, num_timesteps=20, t_min=0.0)
    gen = torch.Generator().manual_seed(0)
    x0 = torch.multinomial(p, 200_000 * length, replacement=True, generator=gen).reshape(-1, length)
    logits = torch.cat([p.log(), torch.zeros(1, dtype=torch.float64)])

    def bayes(xt, t):
        return logits.expand(*xt.shape, -1)

    nelbo = process.loss(bayes, x0, generator=gen).nelbo.mean()
    entropy = float(-(p * p.log()).sum()) * length
    assert float(nelbo) == pytest.approx(entropy, rel=0.02)


@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("loss_type", ["continuous", "discrete"])
def test_uniform_nelbo_is_tight_for_the_optimal_denoiser(schedule, loss_type):
    """With i.i.d. positions of law p, plugging x = p into the posterior formula gives the true reverse
    q(xs | xt) = q(xt | xs) q(xs) / q(xt) exactly, so the NELBO equals L * H(p) (up to the tiny prior term).
    Plugging in the per-position posterior p(x0 | xt) instead is not the true reverse and must do worse."""
    vocab, length = 4, 6
    p = torch.tensor([0.6, 0.25, 0.1, 0.05], dtype=torch.float64)
    process = UniformProcess(vocab, schedule(eps=1e-3), loss_type=loss_type, num_timesteps=20, t_min=0.0)
    gen = torch.Generator().manual_seed(0)
    x0 = torch.multinomial(p, 200_000 * length, replacement=True, generator=gen).reshape(-1, length)

    def optimal(xt, t):
        return p.log().expand(*xt.shape, -1)

    def posterior(xt, t):
        alpha = process.schedule.alpha(t.double()).reshape(-1, 1, 1)
        lik = alpha * torch.nn.functional.one_hot(xt, vocab).double() + (1 - alpha) / vocab
        return p.log() + lik.log()

    state = gen.get_state()
    best = float(process.loss(optimal, x0, generator=gen).nelbo.mean())
    gen.set_state(state)
    worse = float(process.loss(posterior, x0, generator=gen).nelbo.mean())
    entropy = float(-(p * p.log()).sum()) * length
    assert best == pytest.approx(entropy, rel=0.03)
    assert worse > best


def test_process_json_round_trip():
    from guided_diffusion.processes import process_from_json

    for cls in PROCESSES:
        process = make(cls, schedule=CosineSchedule, loss_type="discrete", num_timesteps=64)
        again = process_from_json(process.to_json())
        assert type(again) is cls and again.to_json() == process.to_json()
        assert again.same_noise_as(process)
    with pytest.raises(ValueError, match="unknown process"):
        process_from_json({"name": "gaussian"})


def test_invalid_process_arguments():
    with pytest.raises(ValueError, match="vocab_size"):
        MaskedProcess(1, LogLinearSchedule())
    with pytest.raises(ValueError):
        UniformProcess(4, LogLinearSchedule(), loss_type="bogus")
    assert math.isclose(MaskedProcess(4, LogLinearSchedule()).num_states, 5)
