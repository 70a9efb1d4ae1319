"""Sampler tests: no mask survives, infilling, determinism, output reuse, options and errors."""

from __future__ import annotations

import pytest
import torch

from guided_diffusion.conditioning import Condition
from guided_diffusion.guidance import ClassifierFreeGuidance
from guided_diffusion.processes import MaskedProcess, UniformProcess
from guided_diffusion.sampling import categorical, sample
from guided_diffusion.schedules import CosineSchedule, LogLinearSchedule
from tests.guided_diffusion.fakes import TableDenoiser

PROCESSES = [MaskedProcess, UniformProcess]


def build(cls, length=8, time_conditioned=None):
    process = cls(6, LogLinearSchedule())
    tc = (cls is UniformProcess) if time_conditioned is None else time_conditioned
    return process, TableDenoiser(process.num_states, length, time_conditioned=tc)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("cls", PROCESSES)
@pytest.mark.parametrize("steps", [1, 3, 16])
def test_samples_are_data_tokens_only(cls, steps):
    process, denoiser = build(cls)
    out = sample(process, denoiser, num_samples=32, length=8, steps=steps, generator=gen())
    assert out.tokens.shape == (32, 8)
    assert bool(((out.tokens >= 0) & (out.tokens < process.vocab_size)).all()), "a mask survived"
    assert out.steps == steps


@pytest.mark.parametrize("cls", PROCESSES)
def test_same_seed_same_samples_and_other_seed_differs(cls):
    process, denoiser = build(cls)
    a = sample(process, denoiser, num_samples=16, length=8, steps=10, generator=gen(1)).tokens
    b = sample(process, denoiser, num_samples=16, length=8, steps=10, generator=gen(1)).tokens
    c = sample(process, denoiser, num_samples=16, length=8, steps=10, generator=gen(2)).tokens
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("cls", PROCESSES)
def test_fixed_positions_never_change(cls):
    process, denoiser = build(cls)
    fixed_mask = torch.zeros(16, 8, dtype=torch.bool)
    fixed_mask[:, [0, 3, 7]] = True
    fixed_tokens = torch.randint(0, 6, (16, 8), generator=gen(3))
    seen = []

    def spy(step):
        seen.append(step.xt.clone())
        return ClassifierFreeGuidance(Condition(labels=torch.tensor([0])), guidance_scale=2.0)(step)

    out = sample(
        process,
        denoiser,
        num_samples=16,
        length=8,
        steps=12,
        generator=gen(),
        guidance=spy,
        fixed_mask=fixed_mask,
        fixed_tokens=fixed_tokens,
    )  # type: ignore[arg-type]
    for xt in [*seen, out.tokens]:
        assert torch.equal(xt[fixed_mask], fixed_tokens[fixed_mask])


class Doubled(torch.nn.Module):
    """The wrapped denoiser with its logits times 2 (exact in floating point)."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.time_conditioned = inner.time_conditioned

    def forward(self, xt, t, cond=None):
        return 2.0 * self.inner(xt, t, cond)


@pytest.mark.parametrize("cls", PROCESSES)
def test_temperature_divides_the_logits_for_unguided_and_guided_sampling(cls):
    process, denoiser = build(cls)
    cfg = ClassifierFreeGuidance(Condition(labels=torch.tensor([1])), guidance_scale=2.0)
    for guidance in (None, cfg):
        kw = {"num_samples": 64, "length": 8, "steps": 6, "guidance": guidance}
        plain = sample(process, denoiser, generator=gen(), **kw).tokens
        assert torch.equal(sample(process, denoiser, generator=gen(), temperature=1.0, **kw).tokens, plain)
        halved = sample(process, denoiser, generator=gen(), temperature=0.5, **kw).tokens
        assert torch.equal(halved, sample(process, Doubled(denoiser), generator=gen(), **kw).tokens)
        assert not torch.equal(halved, plain)


@pytest.mark.parametrize("cls", PROCESSES)
def test_cfg_interval_halves_the_null_passes_and_the_full_interval_changes_nothing(cls):
    process, denoiser = build(cls, time_conditioned=True)
    cond = Condition(labels=torch.tensor([1]))
    kw = {"num_samples": 16, "length": 8, "steps": 16, "reuse_outputs": False}
    full = sample(process, denoiser, guidance=ClassifierFreeGuidance(cond, guidance_scale=2.0), generator=gen(), **kw)
    every = ClassifierFreeGuidance(cond, guidance_scale=2.0, interval=(0.0, 1.0))
    assert torch.equal(sample(process, denoiser, guidance=every, generator=gen(), **kw).tokens, full.tokens)
    assert full.rows_evaluated == 16 * 16 * 2
    half = ClassifierFreeGuidance(cond, guidance_scale=2.0, interval=(0.5, 1.0))  # t = 16/16 ... 8/16
    out = sample(process, denoiser, guidance=half, generator=gen(), **kw)
    assert out.rows_evaluated == 16 * (16 + 9)
    assert not torch.equal(out.tokens, full.tokens)


def test_output_reuse_saves_rows_without_changing_samples():
    """A denoiser that ignores t: reusing outputs of unchanged rows gives identical samples."""
    process, denoiser = build(MaskedProcess, time_conditioned=False)
    a = sample(process, denoiser, num_samples=16, length=8, steps=64, generator=gen(), reuse_outputs=True)
    b = sample(process, denoiser, num_samples=16, length=8, steps=64, generator=gen(), reuse_outputs=False)
    assert torch.equal(a.tokens, b.tokens)
    assert a.rows_evaluated < b.rows_evaluated / 2, (a.rows_evaluated, b.rows_evaluated)
    assert b.nfe == 64


def test_no_reuse_when_the_network_sees_t():
    process, denoiser = build(MaskedProcess, time_conditioned=True)
    out = sample(process, denoiser, num_samples=4, length=8, steps=32, generator=gen(), reuse_outputs=True)
    assert out.rows_evaluated == 4 * 32


@pytest.mark.parametrize("cls", PROCESSES)
def test_float64_posterior_and_argmax_final_step(cls):
    process, denoiser = build(cls)
    out = sample(
        process,
        denoiser,
        num_samples=8,
        length=8,
        steps=5,
        generator=gen(),
        posterior_dtype=torch.float64,
        final_step="argmax",
    )
    assert bool((out.tokens < process.vocab_size).all())


def test_cosine_schedule_samples():
    process = UniformProcess(6, CosineSchedule())
    denoiser = TableDenoiser(6, 8, time_conditioned=True)
    out = sample(process, denoiser, num_samples=8, length=8, steps=7, generator=gen())
    assert out.tokens.shape == (8, 8)


def test_categorical_matches_probabilities():
    probs = torch.tensor([0.1, 0.6, 0.3], dtype=torch.float64)
    draws = categorical(probs.log().expand(200_000, 3), gen(5))
    freq = torch.bincount(draws, minlength=3).double() / 200_000
    torch.testing.assert_close(freq, probs, atol=0.005, rtol=0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"steps": 0}, "steps"),
        ({"final_step": "mean"}, "final_step"),
        ({"posterior_dtype": torch.float16}, "posterior_dtype"),
        ({"fixed_mask": torch.ones(2, 8, dtype=torch.bool)}, "together"),
        ({"fixed_mask": torch.ones(2, 8, dtype=torch.bool), "fixed_tokens": torch.full((2, 8), 6)}, "data tokens"),
    ],
)
def test_bad_arguments_raise(kwargs, message):
    process, denoiser = build(MaskedProcess)
    args = {"num_samples": 2, "length": 8, "steps": 4}
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        sample(process, denoiser, **args)


class LinearDenoiser(torch.nn.Module):
    """Embedding then one linear layer (an op autocast runs in bf16); records its output dtypes."""

    time_conditioned = True

    def __init__(self, states, dim=16):
        super().__init__()
        torch.manual_seed(0)
        self.embed = torch.nn.Embedding(states, dim)
        self.out = torch.nn.Linear(dim, states)
        self.dtypes = []

    def forward(self, xt, t, cond=None):
        logits = self.out(self.embed(xt))
        self.dtypes.append(logits.dtype)
        return logits


class LinearScore(torch.nn.Module):
    """log sigmoid of a linear score of the one-hot input: a log-probability (bound 0)."""

    def __init__(self, states, length):
        super().__init__()
        torch.manual_seed(1)
        self.w = torch.nn.Linear(states * length, 1)
        self.dtypes = []

    def forward(self, x, t):
        one_hot = (
            torch.nn.functional.one_hot(x, self.w.in_features // x.shape[1]).float() if x.dtype == torch.long else x
        )
        z = self.w(one_hot.flatten(1)).squeeze(-1)
        self.dtypes.append(z.dtype)
        return torch.nn.functional.logsigmoid(z.float())


@pytest.mark.parametrize("cls", PROCESSES)
def test_bf16_autocast_runs_every_network_pass_in_bf16(cls):
    from guided_diffusion.guidance import ClassifierGuidance

    process = cls(6, LogLinearSchedule())
    kw = {"num_samples": 32, "length": 8, "steps": 6}
    for mode in ("first-order", "exact"):
        denoiser, scorer = LinearDenoiser(process.num_states), LinearScore(process.num_states, 8)
        guidance = ClassifierGuidance(scorer, guidance_scale=2.0, mode=mode, upper_bound=0.0)
        out = sample(process, denoiser, generator=gen(), guidance=guidance, autocast=torch.bfloat16, **kw)
        assert set(denoiser.dtypes) == {torch.bfloat16} and set(scorer.dtypes) == {torch.bfloat16}, mode
        assert bool(((out.tokens >= 0) & (out.tokens < process.vocab_size)).all())
        fp32 = LinearDenoiser(process.num_states)
        sample(process, fp32, generator=gen(), guidance=guidance, **kw)
        assert set(fp32.dtypes) == {torch.float32}, "autocast must stay off unless asked for"
    # the lazy exact draw still equals scoring every candidate, at the same (bf16) network precision
    lazy = ClassifierGuidance(LinearScore(process.num_states, 8), guidance_scale=2.0, mode="exact", upper_bound=0.0)
    full = ClassifierGuidance(
        LinearScore(process.num_states, 8), guidance_scale=2.0, mode="exact", upper_bound=0.0, lazy=False
    )
    a = sample(
        process, LinearDenoiser(process.num_states), generator=gen(), guidance=lazy, autocast=torch.bfloat16, **kw
    )
    b = sample(
        process, LinearDenoiser(process.num_states), generator=gen(), guidance=full, autocast=torch.bfloat16, **kw
    )
    assert torch.equal(a.tokens, b.tokens)
    assert lazy.classifier_calls < full.classifier_calls


def test_sampling_autocast_choices():
    from guided_diffusion.cli.devices import sampling_autocast
    from guided_diffusion.cli.errors import UsageError

    assert sampling_autocast("fp32", "cpu") is None
    assert sampling_autocast("bf16", "cpu") is torch.bfloat16
    assert sampling_autocast("auto", "cpu") in (None, torch.bfloat16)
    with pytest.raises(UsageError, match="allowed: fp32, bf16, auto"):
        sampling_autocast("fp16", "cpu")


@pytest.mark.parametrize("threads, words", [(1, "CPU, 1 thread"), (2, "CPU, 2 threads")])
def test_a_cpu_is_described_with_its_thread_count(threads, words):
    from guided_diffusion.training.trainer import hardware_description

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        assert hardware_description("cpu").endswith(words)  # benchmark reports' and model cards' wording
        assert hardware_description(torch.device("cpu")) == hardware_description("cpu")
    finally:
        torch.set_num_threads(before)
