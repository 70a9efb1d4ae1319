"""``guide-gen``: one console script with explicit subcommands.

Built-in: ``train``, ``sample``, ``export``, ``validate``. Domain packages add commands (``guide-gen molecules ...``)
through the ``guide_gen.commands`` entry-point group.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from guided_diffusion.cli.errors import UsageError, one_line
from guided_diffusion.registry import BENCHMARK_GROUP, COMMAND_GROUP, available, load_plugin
from guided_diffusion.training.checkpoint import CheckpointError

USAGE = """usage: guide-gen COMMAND [ARGS ...]

commands:
  train [key=value ...]            train a denoiser (Hydra overrides of configs/train.yaml)
  sample checkpoint=PATH [...]     sample from a denoiser (overrides of configs/sample.yaml)
  export SRC DST                   write a shippable fp16 copy of a checkpoint
  validate CHECKPOINT [...]        NELBO of a denoiser on its whole validation set
  bench NAME [...]                 run a benchmark ({benchmarks})
{plugins}
Run 'guide-gen COMMAND --help' for a command's options."""


def _builtin(name: str) -> Callable[[list[str]], int] | None:
    if name == "train":
        from guided_diffusion.cli import train_cmd

        return train_cmd.main
    if name == "sample":
        from guided_diffusion.cli import sample_cmd

        return sample_cmd.main
    if name == "export":
        from guided_diffusion.cli import export_cmd

        return export_cmd.main
    if name == "validate":
        from guided_diffusion.cli import validate_cmd

        return validate_cmd.main
    if name == "bench":
        return _bench
    return None


def _bench(argv: list[str]) -> int:
    if not argv or argv[0].startswith("-"):
        raise UsageError(f"guide-gen bench NAME [...]; benchmarks: {', '.join(available(BENCHMARK_GROUP)) or 'none'}")
    try:
        command = load_plugin(BENCHMARK_GROUP, argv[0])
    except ValueError as err:
        raise UsageError(str(err)) from None
    return int(command(argv[1:]) or 0)


def _usage() -> str:
    plugins = "".join(f"  {name:<32} (plugin) see 'guide-gen {name} --help'\n" for name in available(COMMAND_GROUP))
    return USAGE.format(plugins=plugins, benchmarks=", ".join(available(BENCHMARK_GROUP)) or "none installed")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    try:
        command = _builtin(name)
        if command is None:
            try:
                command = load_plugin(COMMAND_GROUP, name)
            except ValueError:
                known = ["train", "sample", "export", "validate", "bench", *available(COMMAND_GROUP)]
                raise UsageError(f"unknown command {name!r}; allowed: {', '.join(known)}") from None
        if name in ("train", "sample") and rest and rest[0] in ("-h", "--help"):
            print(_usage())
            return 0
        return int(command(rest) or 0)
    except (UsageError, CheckpointError) as err:
        print(f"guide-gen {name}: error: {one_line(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"guide-gen {name}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader of stdout went away (``guide-gen ... | head``): stop quietly, as other command-line tools
        # do, and keep Python from reporting the closed pipe again at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
