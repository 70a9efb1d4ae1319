"""Training loop: exact resume after a real kill, DDP on two CPU processes, precision choice, errors."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from guided_diffusion.pipeline import load_model
from guided_diffusion.training.checkpoint import CheckpointError, read_json, read_tensors
from guided_diffusion.training.precision import choose_precision

TOY = [
    "domain.num_train=2000",
    "domain.num_val=128",
    "network=tiny",
    "trainer.batch_size=32",
    "trainer.warmup_steps=10",
    "trainer.log_every=20",
    "trainer.val_every=100",
    "trainer.val_batches=2",
    "trainer.num_threads=1",
    "trainer.device=cpu",
]


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "guided_diffusion.cli.main", *args]


def checkpoint_step(run_dir: Path) -> int:
    try:
        return int(read_json(run_dir / "checkpoint", "trainer")["step"])
    except (CheckpointError, KeyError):
        return 0


def test_resume_after_a_kill_reproduces_the_straight_run(tmp_path):
    steps = ["trainer.max_steps=300", "trainer.ckpt_every=10"]
    straight = tmp_path / "straight"
    subprocess.run(cli("train", *TOY, *steps, f"run_dir={straight}"), check=True, capture_output=True)

    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        cli("train", *TOY, *steps, f"run_dir={killed}"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 120
    while checkpoint_step(killed) < 50 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    stopped_at = checkpoint_step(killed)
    assert 0 < stopped_at < 300, f"the run was not killed mid-way (checkpoint at step {stopped_at})"

    subprocess.run(cli("train", *TOY, *steps, f"run_dir={killed}", "resume=true"), check=True, capture_output=True)
    a = read_tensors(straight / "checkpoint", "trainer")
    b = read_tensors(killed / "checkpoint", "trainer")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), f"{key} differs after resume from step {stopped_at}"
    ema_a, ema_b = read_tensors(straight / "checkpoint", "model"), read_tensors(killed / "checkpoint", "model")
    assert all(torch.equal(ema_a[k], ema_b[k]) for k in ema_a)


def test_sigterm_checkpoints_the_current_step_and_exits_cleanly(tmp_path):
    # ckpt_every far beyond the run: the only checkpoint mid-run is the one the signal asks for
    steps = ["trainer.max_steps=100000", "trainer.ckpt_every=100000", "trainer.log_every=1"]
    proc = subprocess.Popen(
        cli("train", *TOY, *steps, f"run_dir={tmp_path}"), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert proc.stdout is not None
    for line in proc.stdout:  # wait until it is training
        if line.startswith("step") and int(line.split()[1]) >= 3:
            break
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    assert f"signal {int(signal.SIGTERM)}" in out
    stopped_at = checkpoint_step(tmp_path)
    assert 3 <= stopped_at < 100000


def test_resume_refuses_a_different_model(tmp_path):
    run = [*TOY, "trainer.max_steps=5", f"run_dir={tmp_path}"]
    subprocess.run(cli("train", *run), check=True, capture_output=True)
    out = subprocess.run(cli("train", *run, "network.dim=32", "resume=true"), capture_output=True, text=True)
    assert out.returncode == 2
    assert "network differs" in out.stderr and len(out.stderr.strip().splitlines()) == 1
    again = subprocess.run(cli("train", *run), capture_output=True, text=True)
    assert again.returncode == 2 and "resume=true" in again.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _losses(run_dir: Path) -> list[float]:
    lines = (run_dir / "log.jsonl").read_text().splitlines()
    return [json.loads(line)["loss"] for line in lines if '"loss"' in line]


def test_two_process_ddp_on_cpu_trains_like_one_process(tmp_path):
    common = [*TOY, "trainer.max_steps=200", "trainer.ckpt_every=100", "trainer.batch_size=64"]
    single = tmp_path / "single"
    subprocess.run(cli("train", *common, f"run_dir={single}"), check=True, capture_output=True)
    ddp = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--master_addr=127.0.0.1",
        f"--master_port={_free_port()}",
        "-m",
        "guided_diffusion.cli.main",
        "train",
        *common,
        f"run_dir={ddp}",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    a, b = _losses(single), _losses(ddp)
    assert len(a) == len(b) == 10
    assert a[-1] < 0.9 * a[0] and b[-1] < 0.9 * b[0], "both runs must learn"
    assert abs(a[-1] - b[-1]) / a[-1] < 0.1, (a[-1], b[-1])
    meta = read_json(ddp / "checkpoint", "model")
    assert meta["training"]["world_size"] == 2
    assert load_model(ddp / "checkpoint").denoiser.config.dim == 64


def test_precision_choice():
    cpu = torch.device("cpu")
    assert choose_precision("fp32", cpu).autocast is None
    assert choose_precision("bf16", cpu).autocast is torch.bfloat16
    auto = choose_precision("auto", cpu)
    assert (auto.autocast is torch.bfloat16) == (auto.bf16_flops >= 1.3 * auto.fp32_flops)
    with pytest.raises(ValueError):
        choose_precision("fp8", cpu)


def test_token_datasets_concatenate_row_for_row_and_refuse_mismatches():
    from guided_diffusion.data import TokenDataset

    a = TokenDataset(tokens=torch.zeros(2, 4, dtype=torch.long), values=torch.zeros(2, 3))
    b = TokenDataset(tokens=torch.ones(3, 4, dtype=torch.long), values=torch.ones(3, 3))
    both = TokenDataset.concat([a, b, b])
    assert len(both) == 8 and both.labels is None
    assert both.tokens[:2].eq(0).all() and both.tokens[2:].eq(1).all() and both.values[2:].eq(1).all()
    with pytest.raises(ValueError, match="only some have values"):
        TokenDataset.concat([a, TokenDataset(tokens=torch.ones(3, 4, dtype=torch.long))])
    with pytest.raises(ValueError, match="lengths"):
        TokenDataset.concat([a, TokenDataset(tokens=torch.ones(3, 5, dtype=torch.long), values=torch.ones(3, 3))])
