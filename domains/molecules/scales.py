"""The default (``auto``) D-CFG guidance scale of a molecule model: stronger for targets that the model's
unguided molecules rarely meet.

D-CFG at a scale above 1 extrapolates away from the unconditional model. A rare target (``qed=0.9``, met by
about one unguided molecule in seven) needs a strong push; a target the unguided molecules already meet
often (``logp=2.0``, about one in three) is overshot by the same push (mean logP 0.22 at scale 8;
docs/molecules.md). So a model may carry, in its ``model.json``, a guidance record: a 100-point summary
(the 0.5th, 1.5th, ..., 99.5th percentiles) of each property over its own unguided samples, and two scales.
A D-CFG target in a tail of that summary is *far*: fewer than ``far_share`` of the points satisfy it and
its accepted region leaves out the unguided median (so a narrow window around the median, ``qed=0.7``, stays
near). The scale is ``far_scale`` when any D-CFG target is far, else ``near_scale``. Models without a record
use :data:`DEFAULT_SCALE`. ``guide-gen molecules calibrate`` measures and writes the record.

A noisy regressor may carry its own D-CBG scale (:data:`CBG_SCALE_KEY` in its ``model.json``, written by the
release recipe): under ``auto``, its D-CBG terms take that scale, else :data:`DEFAULT_SCALE`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from domains.molecules.targets import Target
from guided_diffusion.training.checkpoint import atomic_write_text

#: the scale of models without a guidance record, of near targets, and of D-CBG terms under ``auto``
DEFAULT_SCALE = 2.0
#: a target is far when fewer than this share of the model's unguided molecules meet it
FAR_SHARE = 0.2
#: points of a record's summary of each property (percentiles at the middle of each of this many bins)
SUMMARY_POINTS = 100
RECORD_KEY = "guidance_defaults"
#: a noisy regressor's D-CBG scale under ``auto`` (its ``model.json``)
CBG_SCALE_KEY = "cbg_scale"


@dataclass(frozen=True)
class GuidanceRecord:
    """A model's ``auto`` scale rule and the unguided statistics it is judged against.

    Attributes:
        near_scale: D-CFG scale when every D-CFG target is near.
        far_scale: D-CFG scale when some D-CFG target is far.
        far_share: a target is far when fewer than this share of the unguided molecules meet it.
        means: property -> mean over the valid unguided samples.
        sds: property -> standard deviation over the valid unguided samples.
        percentiles: property -> the valid unguided samples' values at the 0.5th, 1.5th, ..., 99.5th
            percentiles (observed values, no interpolation), each standing for 1% of them.
        n: unguided samples drawn (valid or not).
        valid: how many of them were valid molecules.
        seed: sampler seed of the unguided samples.
        steps: reverse steps of the unguided samples.
    """

    near_scale: float
    far_scale: float
    far_share: float
    means: dict[str, float]
    sds: dict[str, float]
    percentiles: dict[str, list[float]]
    n: int
    valid: int
    seed: int
    steps: int

    def share(self, target: Target) -> float | None:
        """The share of the model's unguided molecules that meet ``target`` (from the percentile summary, to
        within 1%); None for a property the record does not hold."""
        points = self.percentiles.get(target.name)
        if not points:
            return None
        return float(np.mean(target.satisfied(np.asarray(points, dtype=float))))

    def far(self, target: Target) -> bool:
        """Whether ``target`` lies in a tail of the unguided molecules: met by fewer than ``far_share`` of
        them, with the unguided median outside its accepted region."""
        share = self.share(target)
        if share is None or share >= self.far_share:
            return False
        median = float(np.median(self.percentiles[target.name]))
        return not bool(target.satisfied(np.asarray([median]))[0])

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GuidanceRecord:
        try:
            return cls(
                near_scale=float(data["near_scale"]),
                far_scale=float(data["far_scale"]),
                far_share=float(data["far_share"]),
                means={str(k): float(v) for k, v in data["means"].items()},
                sds={str(k): float(v) for k, v in data["sds"].items()},
                percentiles={str(k): [float(x) for x in v] for k, v in data["percentiles"].items()},
                n=int(data["n"]),
                valid=int(data["valid"]),
                seed=int(data["seed"]),
                steps=int(data["steps"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise ValueError(f"malformed {RECORD_KEY} record in model.json: {err}") from None


@dataclass(frozen=True)
class ScaleChoice:
    """The scale ``auto`` resolved to, and why (one line for the command's report)."""

    scale: float
    reason: str


def guidance_record(meta: dict[str, Any]) -> GuidanceRecord | None:
    """The guidance record of a loaded model's ``model.json`` contents, or None.

    Raises:
        ValueError: for a malformed record.
    """
    data = meta.get(RECORD_KEY)
    return None if data is None else GuidanceRecord.from_json(data)


def auto_scale(targets: list[Target], record: GuidanceRecord | None, *, method: str = "cfg") -> ScaleChoice:
    """The D-CFG scale for ``targets`` (each guided by its own ``@method`` or ``method``)."""
    cfg = [t for t in targets if (t.method or method) == "cfg"]
    if record is None:
        return ScaleChoice(DEFAULT_SCALE, "auto: this model has no guidance record")
    if not cfg:
        return ScaleChoice(record.near_scale, "auto: no D-CFG target")
    far = [t for t in cfg if record.far(t)]
    if far:
        named = ", ".join(f"{t} is met by {record.share(t):.0%} of unguided molecules" for t in far)
        return ScaleChoice(record.far_scale, f"auto: far target ({named})")
    return ScaleChoice(
        record.near_scale,
        f"auto: no target in a tail of the unguided molecules (met by under {record.far_share:.0%}, median outside)",
    )


def measure_record(
    model: Any,
    *,
    near_scale: float,
    far_scale: float,
    far_share: float = FAR_SHARE,
    n: int = 1024,
    seed: int = 1,
    batch_size: int = 256,
    progress: bool = False,
) -> GuidanceRecord:
    """Sample ``n`` unguided molecules from ``model`` with its default sampler and build its record."""
    from domains.molecules.generate import sample_molecules, sampler_for
    from domains.molecules.metrics import evaluate

    remasking, steps = sampler_for(model.process, "auto", None)
    out = sample_molecules(
        model,
        n=n,
        method="none",
        steps=steps,
        seed=seed,
        batch_size=batch_size,
        remasking=remasking,
        progress=progress,
        guidance_scale=near_scale,
    )
    names = list(model.domain.property_names)
    report, canonical, values = evaluate(out.smiles, properties=names)
    if report.valid < 2:
        raise ValueError(f"only {report.valid} of {n} unguided samples are valid molecules; no record written")
    return GuidanceRecord(
        near_scale=near_scale,
        far_scale=far_scale,
        far_share=far_share,
        means={k: v[0] for k, v in report.properties.items()},
        sds={k: v[1] for k, v in report.properties.items()},
        percentiles=summarize(values[[c is not None for c in canonical]], names),
        n=n,
        valid=report.valid,
        seed=seed,
        steps=out.steps,
    )


def summarize(values: np.ndarray, names: list[str]) -> dict[str, list[float]]:
    """Each column's percentile summary: the observed values at the middle of :data:`SUMMARY_POINTS` equal
    bins (NaN values left out), to 4 significant digits."""
    probs = (np.arange(SUMMARY_POINTS) + 0.5) / SUMMARY_POINTS
    out = {}
    for j, name in enumerate(names):
        column = values[:, j][np.isfinite(values[:, j])]
        if column.size:
            out[name] = [float(f"{x:.4g}") for x in np.quantile(column, probs, method="inverted_cdf")]
    return out


def _write_meta(folder: str | Path, key: str, value: Any) -> None:
    """Set ``key`` of the checkpoint's ``model.json`` to ``value`` (atomically); None removes it."""
    path = Path(folder) / "model.json"
    meta = json.loads(path.read_text())
    if value is None:
        meta.pop(key, None)
    else:
        meta[key] = value
    atomic_write_text(path, json.dumps(meta, indent=2, sort_keys=True) + "\n")


def write_record(folder: str | Path, record: GuidanceRecord | None) -> None:
    """Store ``record`` in the checkpoint's ``model.json`` (atomically); None removes it."""
    _write_meta(folder, RECORD_KEY, None if record is None else record.to_json())


def recorded_cbg_scale(meta: dict[str, Any]) -> float | None:
    """A noisy regressor's D-CBG scale under ``auto`` (None when it records none).

    Raises:
        ValueError: when the recorded scale is not a number >= 0.
    """
    value = meta.get(CBG_SCALE_KEY)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise ValueError(f"malformed {CBG_SCALE_KEY} in the regressor's model.json: {value!r} (a number >= 0)")
    return float(value)


def write_cbg_scale(folder: str | Path, scale: float | None) -> None:
    """Store a noisy regressor's D-CBG scale under ``auto`` in its ``model.json`` (atomically); None removes it."""
    _write_meta(folder, CBG_SCALE_KEY, None if scale is None else float(scale))
