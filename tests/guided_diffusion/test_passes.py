"""Network passes in row slices on a CPU: the sizes chosen, and the same outputs as one pass."""

from __future__ import annotations

import pytest
import torch

from guided_diffusion.conditioning import Condition
from guided_diffusion.guidance import ClassifierGuidance, GuidanceStep
from guided_diffusion.networks import passes
from guided_diffusion.networks.passes import row_slices, rows_per_pass
from guided_diffusion.processes import UniformProcess
from guided_diffusion.sampling import DenoiserCache
from guided_diffusion.schedules import LogLinearSchedule
from tests.guided_diffusion.test_network import net


def test_rows_per_pass_splits_only_on_a_cpu_and_keeps_the_limit():
    assert rows_per_pass("cpu", 32) == passes.CPU_TOKENS_PER_PASS // 32
    assert rows_per_pass("cpu", 10**6) == 1
    assert rows_per_pass("cpu", 32, limit=7) == 7
    assert rows_per_pass(torch.device("cuda"), 32) is None
    assert rows_per_pass("cuda:0", 32, limit=4096) == 4096
    with passes.whole_batches():
        assert rows_per_pass("cpu", 32) is None
        assert rows_per_pass("cpu", 32, limit=7) == 7
    assert rows_per_pass("cpu", 32) == passes.CPU_TOKENS_PER_PASS // 32


@pytest.mark.parametrize(("total", "rows"), [(10, 3), (9, 3), (4, None), (5, 8), (0, 3)])
def test_row_slices_cover_every_row_once_in_order(total, rows):
    covered = [i for part in row_slices(total, rows) for i in range(total)[part]]
    assert covered == list(range(total))
    assert all(len(range(total)[part]) <= (rows or total) for part in row_slices(total, rows))


def test_the_sampler_passes_a_cpu_batch_in_slices_with_the_outputs_of_one_pass(monkeypatch):
    denoiser = net(num_classes=3)
    process = UniformProcess(9, LogLinearSchedule())
    xt = torch.randint(0, 9, (23, 12), generator=torch.Generator().manual_seed(0))
    cond = Condition(labels=torch.tensor([1]))
    with torch.no_grad():
        times = torch.full((23,), 0.4)
        expected = [
            process.clean_log_probs(denoiser(xt, times, c), xt)
            for c in (Condition(labels=torch.full((23,), -1)), cond.expand(23))
        ]
    calls = []
    denoiser.register_forward_hook(lambda module, args, out: calls.append(args[0].shape[0]))
    monkeypatch.setattr(passes, "CPU_TOKENS_PER_PASS", 5 * 12)  # 5 rows of 12 tokens per pass
    got = DenoiserCache(denoiser, process).clean_log_probs([None, cond], xt, 0.4)
    assert calls == [5] * 9 + [1]  # both conditions' 46 rows
    for a, b in zip(got, expected, strict=True):
        torch.testing.assert_close(a, b)


def test_exact_guidance_scores_cpu_candidates_in_slices(monkeypatch):
    process = UniformProcess(4, LogLinearSchedule())
    sizes = []

    def log_likelihood(x, t):
        sizes.append(x.shape[0])
        return -(x == 2).float().sum(-1)

    xt = torch.randint(0, 4, (3, 6), generator=torch.Generator().manual_seed(1))
    denoiser = net(num_states=4, seq_len=6)
    step = GuidanceStep(process, DenoiserCache(denoiser, process), xt, 0.5, 0.4)
    full = ClassifierGuidance(log_likelihood, guidance_scale=2.0, mode="exact")(step)
    monkeypatch.setattr(passes, "CPU_TOKENS_PER_PASS", 4 * 6)
    sizes.clear()
    sliced = ClassifierGuidance(log_likelihood, guidance_scale=2.0, mode="exact")(step)
    assert sizes[0] == 3 and max(sizes[1:]) == 4 and sum(sizes[1:]) == 3 * 6 * 3  # current rows, then 54 changes
    torch.testing.assert_close(sliced, full)
