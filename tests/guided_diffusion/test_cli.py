"""The guide-gen command line: one-line errors with exit 2, and a train -> sample round trip."""

from __future__ import annotations

import pytest

from guided_diffusion.cli.main import main

TINY = [
    "domain.num_train=512",
    "domain.num_val=64",
    "network=tiny",
    "trainer.max_steps=30",
    "trainer.batch_size=32",
    "trainer.warmup_steps=5",
    "trainer.val_every=30",
    "trainer.val_batches=1",
    "trainer.log_every=10",
    "trainer.device=cpu",
]


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["frobnicate"], "unknown command 'frobnicate'"),
        (["train", "nonsense"], "key=value"),
        (["train", "process=gaussian"], "gaussian"),
        (["train", "trainer.lr=-1"], "trainer.lr must be > 0"),
        (["train", "trainer.no_such_key=1"], "no_such_key"),
        (["train", "network.dim=30"], "divisible"),
        (["train", "trainer.device=gpu"], "trainer.device must be cpu, cuda or null"),
        (["sample"], "checkpoint=... is required"),
        (["sample", "checkpoint=/nonexistent/ckpt"], "no checkpoint at"),
        (["sample", "checkpoint=x", "steps=0"], "steps must be an integer >= 1"),
        (["sample", "checkpoint=x", "steps=2.5"], "steps must be an integer >= 1, got 2.5"),
        (["sample", "checkpoint=x", "num_samples=abc"], "num_samples must be an integer >= 1"),
        (["sample", "checkpoint=x", "guidance_scale=abc"], "guidance_scale must be a number >= 0"),
        (["sample", "checkpoint=x", "temperature=0"], "temperature must be a number > 0"),
        (["sample", "checkpoint=x", "remask=rescale:2"], "remask: remasking must be"),
        (["sample", "checkpoint=x", "device=gpu"], "unknown device 'gpu'; allowed: cpu, cuda, cuda:N"),
        (["sample", "checkpoint=x", "precision=fp16"], "unknown precision 'fp16'; allowed: fp32, bf16, auto"),
        (["export", "only-one-arg"], "required"),
        (["validate", "/nonexistent/ckpt"], "no checkpoint at"),
        (["validate", "x", "--seeds", "a,b"], "--seeds must be comma-separated integers"),
        (["validate", "x", "--batch-size", "0"], "--batch-size must be >= 1"),
        (["train-classifier", "start_from_denoiser=true"], "pass denoiser=PATH"),
    ],
)
def test_bad_input_gives_one_line_and_exit_2(capsys, argv, needle):
    code, _, err = run(capsys, *argv)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert needle in lines[0]
    assert "Traceback" not in err


def test_a_corrupt_checkpoint_names_its_file(tmp_path, capsys):
    (tmp_path / "model.json").write_text("{")
    (tmp_path / "model.safetensors").write_bytes(b"")
    for argv in (["validate", str(tmp_path)], ["sample", f"checkpoint={tmp_path}"]):
        code, _, err = run(capsys, *argv)
        assert code == 2 and len(err.strip().splitlines()) == 1, err
        assert f"{tmp_path / 'model.json'} is not valid JSON" in err, err


def test_a_closed_stdout_pipe_ends_the_command_quietly(monkeypatch, capsys):
    """``guide-gen ... | head``: the reader goes away, the command stops with 141 (as after SIGPIPE) and no
    traceback, and stdout is pointed at the null device so that Python's exit flush cannot fail again."""
    import os

    import guided_diffusion.cli.main as cli

    def closed(argv: list[str]) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    redirected = []
    monkeypatch.setattr(cli, "_builtin", lambda name: closed)
    monkeypatch.setattr(os, "dup2", lambda fd, target: redirected.append(target))
    monkeypatch.setattr(cli.sys.stdout, "fileno", lambda: 1, raising=False)
    assert main(["sample"]) == 141
    assert redirected == [1] and capsys.readouterr().err == ""


def test_usage(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0 and "train" in out and "sample" in out
    assert run(capsys)[0] == 2


def test_train_then_sample_with_cfg_then_export(tmp_path, capsys):
    run_dir = tmp_path / "run"
    code, out, err = run(capsys, "train", *TINY, f"run_dir={run_dir}")
    assert code == 0, err
    assert "finished at step 30" in out
    samples = tmp_path / "samples.txt"
    code, out, err = run(
        capsys,
        "sample",
        f"checkpoint={run_dir}/checkpoint",
        "num_samples=8",
        "steps=8",
        "label=1",
        "guidance_scale=2",
        f"out={samples}",
        "progress=false",
    )
    assert code == 0, err
    lines = samples.read_text().splitlines()
    assert len(lines) == 8 and all(len(line) == 16 and set(line) <= set("abcdefgh") for line in lines)
    assert "bigram_tv" in out
    code, _, err = run(capsys, "sample", f"checkpoint={run_dir}/checkpoint", "label=7", "num_samples=2")
    assert code == 2 and "allowed: 0..1" in err
    code, out, err = run(capsys, "export", str(run_dir / "checkpoint"), str(tmp_path / "shipped"))
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "shipped").iterdir()) == ["model.json", "model.safetensors"]
    # validate: the whole validation set, the mean over seeds of the times and noise
    nats = {}
    for seeds in ("0", "1", "0,1"):
        code, out, err = run(capsys, "validate", str(tmp_path / "shipped"), "--seeds", seeds, "--device", "cpu")
        assert code == 0 and "64 validation rows" in out, err
        nats[seeds] = float(out.split("val_nats_per_token ")[1].split()[0])
    assert nats["0"] != nats["1"] and nats["0,1"] == pytest.approx((nats["0"] + nats["1"]) / 2, abs=2e-4)
    code, out, err = run(
        capsys, "sample", f"checkpoint={tmp_path / 'shipped'}", "num_samples=4", "steps=4", "progress=false"
    )
    assert code == 0, err
    # a regressor started from the exported denoiser's trunk must share its size
    trainer = ["trainer.max_steps=2", "trainer.batch_size=8", "trainer.warmup_steps=1", "trainer.device=cpu"]
    start = ["train-classifier", f"denoiser={tmp_path / 'shipped'}", "start_from_denoiser=true", *trainer]
    start.append("classifier.head=categorical")
    code, _, err = run(capsys, *start, f"run_dir={tmp_path / 'bad'}")
    assert code == 2 and "dim 128 vs 64" in err and len(err.strip().splitlines()) == 1
    code, out, err = run(capsys, *start, "classifier.dim=64", f"run_dir={tmp_path / 'reg'}")
    assert code == 0, err
    assert "finished at step 2" in out


def test_train_init_from_continues_a_denoiser_and_refuses_another_network(tmp_path, capsys):
    import torch

    from guided_diffusion.pipeline import load_model

    first = tmp_path / "first"
    code, _, err = run(capsys, "train", *TINY, f"run_dir={first}")
    assert code == 0, err
    source = load_model(first / "checkpoint")
    # lr so small that one step cannot move the weights visibly: the run must start from the source's weights
    second = tmp_path / "second"
    tiny_lr = [*TINY, "trainer.max_steps=1", "trainer.lr=1e-12", "trainer.warmup_steps=0", "trainer.val_every=1"]
    code, out, err = run(capsys, "train", *tiny_lr, f"run_dir={second}", f"init_from={first / 'checkpoint'}")
    assert code == 0 and "finished at step 1" in out, err
    continued = load_model(second / "checkpoint")
    fresh = tmp_path / "fresh"
    code, _, err = run(capsys, "train", *tiny_lr, f"run_dir={fresh}")
    assert code == 0, err
    scratch = load_model(fresh / "checkpoint")
    for name, weight in source.denoiser.state_dict().items():
        assert torch.allclose(continued.denoiser.state_dict()[name], weight, atol=1e-6), name
    assert any(
        not torch.allclose(scratch.denoiser.state_dict()[name], weight, atol=1e-3)
        for name, weight in source.denoiser.state_dict().items()
    )
    assert continued.meta["started_from"] == {
        "kind": "denoiser",
        "path": str(first / "checkpoint"),
        "step": 30,
        "added": None,
    }
    assert scratch.meta["started_from"] is None
    # resuming the continued run needs its own checkpoint only: the init_from folder may be gone, and the
    # record of where the run started stays the checkpoint's
    code, out, err = run(
        capsys,
        "train",
        *tiny_lr,
        "trainer.max_steps=2",
        f"run_dir={second}",
        f"init_from={tmp_path / 'gone'}",
        "resume=true",
    )
    assert code == 0 and "finished at step 2" in out, err
    assert load_model(second / "checkpoint").meta["started_from"] == continued.meta["started_from"]
    # learned absolute positions may be added to a rotary network: they start at zero, so the started
    # network computes exactly what its source did
    code, out, err = run(
        capsys,
        "train",
        *tiny_lr,
        "network.positions=rotary+learned",
        f"run_dir={tmp_path / 'pos'}",
        f"init_from={first / 'checkpoint'}",
    )
    assert code == 0, err
    extended = load_model(tmp_path / "pos" / "checkpoint")
    assert extended.meta["started_from"]["added"] == "learned positions"
    assert extended.denoiser.pos is not None and float(extended.denoiser.pos.detach().abs().max()) < 1e-6
    xt = torch.randint(0, source.process.num_states, (3, source.denoiser.config.seq_len))
    t = torch.rand(3)
    with torch.no_grad():
        torch.testing.assert_close(extended.denoiser(xt, t), source.denoiser(xt, t), atol=1e-4, rtol=0)
    # ... but not taken away
    code, _, err = run(
        capsys, "train", *tiny_lr, f"run_dir={tmp_path / 'back'}", f"init_from={tmp_path / 'pos' / 'checkpoint'}"
    )
    assert code == 2 and "another network" in err and len(err.strip().splitlines()) == 1, err
    # another network, another process, or no checkpoint at all: one line, exit 2
    for extra, needle in (
        (["network.dim=32"], "another network"),
        (["process=uniform"], "another process"),
    ):
        code, _, err = run(
            capsys, "train", *tiny_lr, *extra, f"run_dir={tmp_path / 'bad'}", f"init_from={first / 'checkpoint'}"
        )
        assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, err
    code, _, err = run(capsys, "train", *tiny_lr, f"run_dir={tmp_path / 'bad'}", f"init_from={tmp_path / 'none'}")
    assert code == 2 and "init_from" in err and len(err.strip().splitlines()) == 1, err
