"""The QM9 benchmark pipeline end to end on tiny models: every method present in all three outputs."""

from __future__ import annotations

import pandas as pd
import pytest

from domains.molecules.benchmark import METHODS
from guided_diffusion.cli.main import main

# the end-to-end tests train three tiny models and six classifiers, then run every method: minutes
SLOW = pytest.mark.slow

TINY = [
    "network=tiny",
    "domain.max_train=256",
    "domain.num_val=64",
    "domain.workers=1",
    "trainer.max_steps=3",
    "trainer.batch_size=32",
    "trainer.warmup_steps=1",
    "trainer.val_every=0",
    "trainer.log_every=3",
]


@pytest.fixture(scope="module")
def tiny_checkpoints(tmp_path_factory, data_dir):
    root = tmp_path_factory.mktemp("bench")
    runs, ckpts = root / "runs", root / "checkpoints"
    for name in ("qm9_udlm", "qm9_mdlm", "qm9_ar"):
        assert main(["train", f"experiment={name}", f"run_dir={runs / name}", *TINY]) == 0
        assert main(["export", str(runs / name / "checkpoint"), str(ckpts / name)]) == 0
        for suffix, extra in (("regressor", []), ("denoised_regressor", ["classifier=denoised"])):
            run = runs / f"{name}_{suffix}"
            args = [
                "train-classifier",
                f"denoiser={ckpts / name}",
                f"run_dir={run}",
                "classifier.dim=32",
                "classifier.depth=1",
                *extra,
                *[o for o in TINY if o.startswith("trainer.")],
            ]
            assert main(args) == 0
            assert main(["export", str(run / "checkpoint"), str(ckpts / f"{name}_{suffix}")]) == 0
    return ckpts


@SLOW
def test_quick_benchmark_writes_every_method(tiny_checkpoints, tmp_path, capsys):
    out = tmp_path / "bench"
    code = main(
        ["bench", "molecules", "--quick", "--samples", "4", "--out", str(out), "--checkpoints", str(tiny_checkpoints)]
    )
    assert code == 0
    frame = pd.read_csv(out / "results.csv")
    assert set(frame["method"]) == set(METHODS)
    assert set(frame["scale"]) == {0.0, 1.0, 3.0}  # each model unguided at scale 0, the rest at 1 and 3
    assert (frame["valid"] <= 4).all() and (frame["novel"] <= frame["unique"]).all()
    table = (out / "results.md").read_text()
    assert all(f"| {m} |" in table for m in METHODS)
    assert (out / "results.png").stat().st_size > 1000


@SLOW
def test_value_targets_run_through_every_method(tiny_checkpoints, tmp_path):
    out = tmp_path / "bench"
    argv = ["bench", "molecules", "--quick", "--samples", "4", "--scales", "2", "--targets", "qed=0.6,rings=4"]
    assert main([*argv, "--out", str(out), "--checkpoints", str(tiny_checkpoints)]) == 0
    frame = pd.read_csv(out / "results.csv")
    assert list(dict.fromkeys(frame["target"])) == ["qed=0.6±0.05", "rings=4±0"]
    for _, rows in frame.groupby("target"):
        assert set(rows["method"]) == set(METHODS)
    scored = frame[frame["novel"] > 0]
    assert scored["novel_hit_rate"].between(0, 1).all() and scored["novel_mean"].notna().all()
    assert frame.loc[frame["novel"] == 0, "novel_hit_rate"].isna().all()
    table = (out / "results.md").read_text()
    assert "### qed=0.6±0.05" in table and "### rings=4±0" in table


def test_missing_models_are_named(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["bench", "molecules", "--quick", "--checkpoints", str(tmp_path), "--out", str(out)]) == 2
    assert not out.exists(), "a run that fails leaves no output folder behind"
    err = capsys.readouterr().err
    assert "missing checkpoints" in err and "qm9_ar" in err and len(err.strip().splitlines()) == 1


def test_methods_option_needs_only_the_models_of_those_methods(tmp_path, capsys):
    argv = ["bench", "molecules", "--quick", "--checkpoints", str(tmp_path), "--out", str(tmp_path / "out")]
    assert main([*argv, "--methods", "AR CFG,AR FUDGE"]) == 2
    err = capsys.readouterr().err
    assert "missing checkpoints" in err and "qm9_ar, qm9_ar_regressor" in err and "mdlm" not in err, err


@SLOW
def test_resume_keeps_finished_rows_and_runs_the_rest(tiny_checkpoints, tmp_path):
    out = tmp_path / "bench"
    base = ["bench", "molecules", "--quick", "--samples", "4", "--out", str(out)]
    base += ["--checkpoints", str(tiny_checkpoints)]
    assert main([*base, "--scales", "1"]) == 0
    first = pd.read_csv(out / "results.csv")
    assert set(first["scale"]) == {0.0, 1.0} and len(first) == len(METHODS)  # the unguided rows at 0
    assert main([*base, "--scales", "1,2", "--resume"]) == 0
    both = pd.read_csv(out / "results.csv")
    unguided = sum(kind == "none" for _, kind, _ in METHODS.values())
    assert len(both) == 2 * len(METHODS) - unguided  # an unguided run has no scale to add
    kept = both[both["scale"] < 2.0].reset_index(drop=True)
    pd.testing.assert_frame_equal(kept, first)  # the same rows, wall times included: not rerun
    # another target for two methods only, added to the same table
    assert main([*base, "--scales", "1", "--targets", "rings-class", "--methods", "AR CFG,UDLM D-CFG", "--resume"]) == 0
    more = pd.read_csv(out / "results.csv")
    added = more.iloc[len(both) :]
    assert list(added["method"]) == ["AR CFG", "UDLM D-CFG"] and added["target"].str.startswith("rings").all()


@pytest.mark.parametrize(
    "option, message",
    [
        (["--scales", "1,x"], "--scales takes comma-separated numbers"),
        (["--scales", "-1"], "--scales takes comma-separated numbers"),
        (["--targets", "sa=2"], "conditioned on qed and rings only"),
        (["--targets", "logp-class"], "allowed: qed-class, rings-class"),
        (["--targets", "qed=1.5"], "qed"),
        (["--methods", "AR CFG,AR GAN"], "--methods: unknown ['AR GAN']; allowed: AR unguided, AR CFG"),
        (["--methods", ","], "--methods: unknown"),
    ],
)
def test_bad_sweep_options_are_usage_errors(option, message, tmp_path, capsys):
    assert main(["bench", "molecules", "--quick", "--out", str(tmp_path), *option]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_the_table_gives_an_interval_only_over_several_seeds():
    from domains.molecules.benchmark import BenchSettings, summarize, to_markdown

    row = {"target": "qed>=0.5", "method": "UDLM D-CFG", "scale": 1.0, "samples": 8, "unique": 8, "novel_mean": 0.5}
    row |= {"novel_hit_rate": 0.5, "seconds": 1.0}
    rows = [{**row, "seed": seed, "valid": valid, "novel": novel} for seed, valid, novel in ((0, 6, 4), (1, 8, 2))]
    two = to_markdown(summarize(pd.DataFrame(rows)), BenchSettings(samples=8, seeds=(0, 1)))
    # mean 7 valid, sd sqrt(2); Student's t for 1 degree of freedom, 12.706: 12.706 * sqrt(2) / sqrt(2) -> "7±13"
    assert "| UDLM D-CFG | 1 | 7±13 | 8±0 | 3±13 | 0.500±0.000 | 50% | 1.0 |" in two and "95% interval" in two
    three = [*rows, {**rows[0], "seed": 2, "valid": 7, "novel": 3}]  # sd 1, t(2 dof) 4.303 / sqrt(3) -> 2.48
    assert "| UDLM D-CFG | 1 | 7±2 |" in to_markdown(summarize(pd.DataFrame(three)), BenchSettings(seeds=(0, 1, 2)))
    one = to_markdown(summarize(pd.DataFrame(rows[:1])), BenchSettings(samples=8, seeds=(0,)))
    assert "| UDLM D-CFG | 1 | 6 | 8 | 4 | 0.500 | 50% | 1.0 |" in one and "one seed, so no interval" in one
    empty = {**rows[0], "novel": 0, "novel_mean": float("nan"), "novel_hit_rate": float("nan")}
    assert "| UDLM D-CFG | 1 | 6 | 8 | 0 | - | - | 1.0 |" in to_markdown(
        summarize(pd.DataFrame([empty])), BenchSettings()
    )


def test_the_summary_keeps_the_sweeps_order_whatever_order_the_rows_came_in():
    from domains.molecules.benchmark import summarize

    row = {"samples": 8, "seed": 0, "valid": 1, "unique": 1, "novel": 1, "novel_mean": 0.5, "novel_hit_rate": 0.5}
    row |= {"seconds": 1.0}
    order = [
        ("qed>=0.5", "another method", 1.0),
        ("rings>=4", "UDLM NOS", 10.0),
        ("qed>=0.5", "UDLM D-CFG", 2.0),
        ("rings>=4", "AR CFG", 1.0),
        ("qed>=0.5", "AR FUDGE", 1.0),
        ("qed>=0.5", "UDLM D-CFG", 1.0),
        ("rings>=4", "UDLM NOS", 1.0),
    ]
    frame = pd.DataFrame([{**row, "target": t, "method": m, "scale": g} for t, m, g in order])
    got = list(summarize(frame)[["target", "method", "scale"]].itertuples(index=False, name=None))
    assert got == [
        ("qed>=0.5", "AR FUDGE", 1.0),
        ("qed>=0.5", "UDLM D-CFG", 1.0),
        ("qed>=0.5", "UDLM D-CFG", 2.0),
        ("qed>=0.5", "another method", 1.0),  # a method outside the sweep's list comes after it
        ("rings>=4", "AR CFG", 1.0),
        ("rings>=4", "UDLM NOS", 1.0),
        ("rings>=4", "UDLM NOS", 10.0),
    ]


def test_rows_with_different_seed_counts_get_a_seeds_column_and_intervals_only_where_there_are_several():
    from domains.molecules.benchmark import BenchSettings, summarize, to_markdown

    row = {"target": "qed>=0.5", "samples": 8, "unique": 8, "novel_mean": 0.5, "novel_hit_rate": 0.5, "seconds": 1.0}
    rows = [
        {**row, "method": "UDLM D-CFG", "scale": 1.0, "seed": s, "valid": v, "novel": 3} for s, v in ((0, 6), (1, 8))
    ]
    rows.append({**row, "method": "UDLM NOS", "scale": 1.0, "seed": 0, "valid": 5, "novel": 2})
    table = to_markdown(summarize(pd.DataFrame(rows)), BenchSettings(samples=8, seeds=(0,)))
    assert "1-2 seeds per row (the seeds column)" in table and "on the rows with several" in table
    assert "| method | g | seeds | valid |" in table
    assert "| UDLM D-CFG | 1 | 2 | 7±13 | 8±0 | 3±0 |" in table and "| UDLM NOS | 1 | 1 | 5 | 8 | 2 |" in table


def test_the_remdm_row_samples_masked_diffusion_with_the_remasking_step_and_the_others_without(monkeypatch):
    """The sweep hands ``generate`` the ReMDM step for ``MDLM D-CFG ReMDM`` only (the shipped qm9_mdlm, with
    sampling replaced by a recorder: this checks the wiring, not the samples)."""
    import torch

    from domains.molecules import benchmark
    from domains.molecules.generate import DEFAULT_REMASKING
    from guided_diffusion.pipeline import Generation

    seen: list[object] = []

    def record(model, *, num_samples, guidance, **kwargs):
        seen.append(kwargs["remasking"])
        tokens = torch.zeros(num_samples, model.denoiser.config.seq_len, dtype=torch.long)
        return Generation(tokens=tokens, nfe=0, seconds=0.0, steps=kwargs["steps"])

    monkeypatch.setattr(benchmark, "generate", record)
    settings = benchmark.BenchSettings(
        samples=2, scales=(1.0,), seeds=(0,), targets=("qed-class",), methods=("MDLM D-CFG", "MDLM D-CFG ReMDM")
    )
    frame = benchmark.run_benchmark(settings, progress=lambda _: None)
    assert list(frame["method"]) == ["MDLM D-CFG", "MDLM D-CFG ReMDM"]
    assert seen == [None, DEFAULT_REMASKING]


def test_each_model_runs_unguided_once_per_seed_at_scale_zero(monkeypatch, tmp_path):
    """The unguided reference rows ignore the scales, sample without guidance, and sample once per seed for
    every target (the shipped qm9_udlm, with sampling replaced by a recorder); the table and the plot take them
    as they take any row."""
    import torch

    from domains.molecules import benchmark
    from guided_diffusion.guidance import NoGuidance
    from guided_diffusion.pipeline import Generation

    seen: list[tuple[str, int]] = []

    def record(model, *, num_samples, guidance, **kwargs):
        seen.append((type(guidance).__name__, kwargs["seed"]))
        tokens = torch.zeros(num_samples, model.denoiser.config.seq_len, dtype=torch.long)
        return Generation(tokens=tokens, nfe=0, seconds=0.0, steps=kwargs["steps"])

    monkeypatch.setattr(benchmark, "generate", record)
    settings = benchmark.BenchSettings(
        samples=2,
        scales=(1.0, 5.0),
        seeds=(0, 1),
        targets=("qed-class", "rings-class"),
        methods=("UDLM unguided", "UDLM D-CFG"),
    )
    frame = benchmark.run_benchmark(settings, progress=lambda _: None)
    guided = [("UDLM D-CFG", g, s) for g in (1, 5) for s in (0, 1)]
    runs = [("UDLM unguided", 0.0, 0), ("UDLM unguided", 0.0, 1), *guided]
    assert list(zip(frame["method"], frame["scale"], frame["seed"], strict=True)) == runs + runs
    assert frame["target"].str.startswith("qed").sum() == len(runs)
    unguided = [(NoGuidance.__name__, 0), (NoGuidance.__name__, 1)]
    # the second target scores the first target's unguided samples again and samples only the guided runs
    assert seen[:2] == unguided and unguided[0] not in seen[2:] and len(seen) == 2 + 2 * 4
    summary = benchmark.summarize(frame)
    assert "| UDLM unguided | 0 | 0±0 |" in benchmark.to_markdown(summary, settings)
    benchmark.plot(summary, tmp_path / "plot.png")
    assert (tmp_path / "plot.png").stat().st_size > 1000


def test_report_renders_the_rows_of_a_stopped_or_merged_sweep_and_runs_nothing(tmp_path, capsys):
    out = tmp_path / "bench"
    out.mkdir()
    row = {"target": "qed>=0.5", "samples": 8, "unique": 8, "novel_mean": 0.5, "novel_hit_rate": 0.5, "seconds": 1.0}
    rows = [
        {**row, "method": "UDLM D-CFG", "scale": 1.0, "seed": s, "valid": v, "novel": 3} for s, v in ((0, 6), (1, 8))
    ]
    rows.append({**row, "method": "MDLM D-CFG ReMDM", "scale": 1.0, "seed": 0, "valid": 5, "novel": 2})
    pd.DataFrame(rows).to_csv(out / "results.csv", index=False)
    before = (out / "results.csv").read_text()
    # no checkpoints folder at all: a run would fail, so this shows nothing runs
    assert main(["bench", "molecules", "--report", "--out", str(out), "--checkpoints", str(tmp_path / "none")]) == 0
    table = (out / "results.md").read_text()
    assert "| UDLM D-CFG | 1 | 2 | 7±13 | 8±0 | 3±0 |" in table and "| MDLM D-CFG ReMDM | 1 | 1 | 5 | 8 | 2 |" in table
    assert "Samples per run: 8" in table and (out / "results.png").stat().st_size > 1000
    assert (out / "results.csv").read_text() == before


def _rows(method: str, seeds: dict[int, int]) -> pd.DataFrame:
    """Benchmark rows of ``method`` toward one target: seed -> valid count."""
    row = {"target": "qed>=0.5", "scale": 1.0, "samples": 8, "unique": 8, "novel": 3, "novel_mean": 0.5}
    return pd.DataFrame(
        [
            {**row, "method": method, "seed": s, "valid": v, "novel_hit_rate": 0.5, "seconds": 1.0}
            for s, v in seeds.items()
        ]
    )


def test_report_merges_the_tables_of_separate_jobs(tmp_path, capsys):
    """--merge adds other sweeps' rows to DIR/results.csv before the report; a run in two tables (the same
    counts, other seconds) is kept once."""
    out, a, b = tmp_path / "merged", tmp_path / "a.csv", tmp_path / "b.csv"
    _rows("UDLM D-CFG", {0: 6, 1: 8}).to_csv(a, index=False)
    _rows("UDLM D-CFG", {1: 8, 2: 7}).assign(seconds=9.0).to_csv(b, index=False)
    args = ["bench", "molecules", "--report", "--out", str(out), "--checkpoints", str(tmp_path / "none")]
    assert main([*args, "--merge", f"{a},{b}"]) == 0
    merged = pd.read_csv(out / "results.csv")
    assert sorted(merged["seed"]) == [0, 1, 2] and sorted(merged["valid"]) == [6, 7, 8]
    assert "| UDLM D-CFG | 1 | 7±2 | 8±0 | 3±0 |" in (out / "results.md").read_text()
    # DIR/results.csv now holds the union, so merging more rows into it keeps the earlier ones
    c = tmp_path / "c.csv"
    _rows("MDLM D-CFG", {0: 5}).to_csv(c, index=False)
    assert main([*args, "--merge", str(c)]) == 0
    assert len(pd.read_csv(out / "results.csv")) == 4


@pytest.mark.parametrize(
    "second, samples, message",
    [({0: 7}, 8, "differs between"), ({1: 7}, 16, "a table compares runs of one size"), (None, 8, "no such file")],
)
def test_merge_refuses_conflicting_or_missing_tables(second, samples, message, tmp_path, capsys):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    _rows("UDLM D-CFG", {0: 6}).to_csv(a, index=False)
    if second is not None:
        _rows("UDLM D-CFG", second).assign(samples=samples).to_csv(b, index=False)
    assert main(["bench", "molecules", "--report", "--out", str(tmp_path / "out"), "--merge", f"{a},{b}"]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out" / "results.csv").exists()


def test_merge_needs_report(tmp_path, capsys):
    assert main(["bench", "molecules", "--out", str(tmp_path), "--merge", str(tmp_path / "a.csv")]) == 2
    err = capsys.readouterr().err.strip()
    assert "--merge goes with --report" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize(
    "rows, message",
    [
        (None, "does not exist"),
        ([{"target": "qed>=0.5"}], "is not a benchmark table"),
    ],
)
def test_report_without_a_table_is_a_usage_error(rows, message, tmp_path, capsys):
    if rows is not None:
        pd.DataFrame(rows).to_csv(tmp_path / "results.csv", index=False)
    assert main(["bench", "molecules", "--report", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "extra", [["--quick"], ["--resume"], ["--samples", "8"], ["--methods", "UDLM D-CFG"], ["--first-seed", "1"]]
)
def test_report_refuses_the_options_that_shape_a_sweep(extra, tmp_path, capsys):
    """--report runs nothing, so an option that would change what runs is an error, not silently ignored."""
    assert main(["bench", "molecules", "--report", "--out", str(tmp_path), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and extra[0] in err and "--report runs nothing" in err


@pytest.mark.parametrize(
    "extra, seeds",
    [([], (0, 1, 2)), (["--first-seed", "1"], (1, 2, 3)), (["--seeds", "2", "--first-seed", "3"], (3, 4))],
)
def test_first_seed_numbers_the_seeds_of_a_sweep(extra, seeds, tmp_path, monkeypatch):
    """--first-seed K runs seeds K, K+1, ... so that seeds can run as separate jobs and be merged."""
    from domains.molecules import benchmark_cli

    seen = []

    def stop(settings, **kwargs):
        seen.append(settings.seeds)
        raise ValueError("stopped before sampling")

    monkeypatch.setattr(benchmark_cli, "run_benchmark", stop)
    assert main(["bench", "molecules", "--out", str(tmp_path), *extra]) == 2
    assert seen == [seeds]


@pytest.mark.parametrize(
    ("extra", "needle"),
    [(["--first-seed", "-1"], "--first-seed must be >= 0"), (["--threads", "0"], "--threads must be >= 1")],
)
def test_bad_sweep_numbers_are_usage_errors(tmp_path, capsys, extra, needle):
    assert main(["bench", "molecules", "--out", str(tmp_path), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err
