"""Property targets shared by the CLI and the Python API: ``name=value``, ``name=value+-tol``,
``name>=value`` and ``name<=value``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import numpy as np

from domains.molecules.properties import PROPERTIES, get_property

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_PATTERN = re.compile(
    rf"^\s*(?P<name>[a-z_]+)\s*(?P<op>>=|<=|=)\s*(?P<value>{_NUMBER})\s*(?:(?:\+-|±)\s*(?P<tol>{_NUMBER}))?"
    r"\s*(?:@\s*(?P<method>[a-z]+))?\s*$"
)
METHODS = ("cfg", "cbg")

SYNTAX = "name=value, name=value+-tol, name>=value or name<=value, optionally followed by @cfg or @cbg"


class TargetError(ValueError):
    """A malformed, unknown or impossible target."""


@dataclass(frozen=True)
class Target:
    """A goal on one property.

    Attributes:
        name: property name.
        op: ``=`` (within ``tolerance`` of ``value``), ``>=`` or ``<=``.
        value: the target value (raw units).
        tolerance: half-width for ``=`` targets.
        method: guidance method for this target (``cfg`` or ``cbg``); None = the command's default.
    """

    name: str
    op: Literal["=", ">=", "<="]
    value: float
    tolerance: float = 0.0
    method: str | None = None

    def satisfied(self, values: np.ndarray) -> np.ndarray:
        """Bool mask of ``values`` meeting the target (NaN never does)."""
        with np.errstate(invalid="ignore"):
            if self.op == ">=":
                return np.asarray(values >= self.value)
            if self.op == "<=":
                return np.asarray(values <= self.value)
            # a small slack absorbs float rounding of exact integer counts
            return np.asarray(np.abs(values - self.value) <= self.tolerance + 1e-9)

    def __str__(self) -> str:
        if self.op == "=":
            return f"{self.name}={self.value:g}±{self.tolerance:g}"
        return f"{self.name}{self.op}{self.value:g}"


def parse_target(text: str) -> Target:
    """Parse one target.

    Raises:
        TargetError: naming what is wrong and what is allowed.
    """
    match = _PATTERN.match(text)
    if match is None:
        raise TargetError(f"malformed target {text!r}; expected {SYNTAX} (properties: {', '.join(PROPERTIES)})")
    name, op = match["name"], match["op"]
    try:
        prop = get_property(name)
    except ValueError as err:
        raise TargetError(str(err)) from None
    value = float(match["value"])
    method = match["method"]
    if method is not None and method not in METHODS:
        raise TargetError(f"target {text!r}: unknown method @{method}; allowed: {', '.join('@' + m for m in METHODS)}")
    if match["tol"] is not None and op != "=":
        raise TargetError(f"target {text!r}: a tolerance (+-) only goes with '='")
    tol = 0.0 if op != "=" else prop.tolerance if match["tol"] is None else float(match["tol"])
    if tol < 0:
        raise TargetError(f"target {text!r}: the tolerance must be >= 0")
    allowed = f"{name} lies in [{prop.low:g}, {prop.high:g}]"
    if op == "=" and not prop.low - tol <= value <= prop.high + tol:
        raise TargetError(f"impossible target {text!r}: {allowed}")
    if op == ">=" and value > prop.high:
        raise TargetError(f"impossible target {text!r}: {allowed}")
    if op == "<=" and value < prop.low:
        raise TargetError(f"impossible target {text!r}: {allowed}")
    if prop.integer and op == "=" and tol < 0.5 and abs(value - round(value)) > tol:
        raise TargetError(f"impossible target {text!r}: {name} is a whole number")
    return Target(name=name, op=op, value=value, tolerance=tol, method=method)  # type: ignore[arg-type]


def parse_targets(texts: list[str]) -> list[Target]:
    """Parse several targets; at most one per property.

    Raises:
        TargetError: for a bad target or a property targeted twice.
    """
    targets = [parse_target(t) for t in texts]
    names = [t.name for t in targets]
    for name in set(names):
        if names.count(name) > 1:
            raise TargetError(f"property {name!r} is targeted more than once")
    return targets
