"""Plugin lookup through package entry points, so the engine never imports a plugin by name.

Domains register under ``guide_gen.domains`` (name -> class with ``from_state``), extra CLI commands under
``guide_gen.commands`` and benchmarks (``guide-gen bench NAME``) under ``guide_gen.benchmarks`` (name ->
``main(argv) -> int``). Third-party packages can add their own.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

DOMAIN_GROUP = "guide_gen.domains"
COMMAND_GROUP = "guide_gen.commands"
BENCHMARK_GROUP = "guide_gen.benchmarks"


def available(group: str) -> list[str]:
    """Names registered in an entry-point group."""
    return sorted({ep.name for ep in entry_points(group=group)})


def load_plugin(group: str, name: str) -> Any:
    """The object registered as ``name`` in ``group``.

    Raises:
        ValueError: if nothing is registered under that name.
    """
    for ep in entry_points(group=group):
        if ep.name == name:
            return ep.load()
    raise ValueError(f"unknown {group.rsplit('.', 1)[-1][:-1]} {name!r}; available: {available(group)}")


def domain_from_state(name: str, state: dict[str, Any]) -> Any:
    """Rebuild a domain from the ``name`` and ``state`` stored in a checkpoint."""
    return load_plugin(DOMAIN_GROUP, name).from_state(state)
