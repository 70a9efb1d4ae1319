"""``guide-gen export SRC DST [--dtype float16|bfloat16|float32]``: a shippable copy of a checkpoint."""

from __future__ import annotations

import torch

from guided_diffusion.cli.errors import ArgumentParser
from guided_diffusion.pipeline import export_model

DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}


def main(argv: list[str]) -> int:
    parser = ArgumentParser(prog="guide-gen export", description="Write EMA weights (cast) and model.json to DST.")
    parser.add_argument("src", help="checkpoint folder")
    parser.add_argument("dst", help="destination folder")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="float16", help="weights dtype")
    args = parser.parse_args(argv)
    path = export_model(args.src, args.dst, dtype=DTYPES[args.dtype])
    print(f"exported {args.src} -> {path}")
    return 0
