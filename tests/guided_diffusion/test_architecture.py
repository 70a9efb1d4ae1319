"""Imports point inward: the engine never imports a plugin package."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_engine_does_not_import_plugins():
    offenders = []
    for path in (ROOT / "guided_diffusion").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                if name.split(".")[0] in ("domains", "classifiers"):
                    offenders.append(f"{path.relative_to(ROOT)}: {name}")
    assert not offenders, offenders


def test_no_module_is_oversized():
    sizes = {
        str(p.relative_to(ROOT)): len(p.read_text().splitlines())
        for pkg in ("guided_diffusion", "domains", "classifiers")
        for p in (ROOT / pkg).rglob("*.py")
    }
    assert all(n <= 450 for n in sizes.values()), {k: v for k, v in sizes.items() if v > 450}
