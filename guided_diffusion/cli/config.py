"""Composing Hydra configs from the packaged ``configs/`` tree, with one-line errors."""

from __future__ import annotations

from typing import Any

from hydra import compose, initialize_config_module
from hydra.errors import HydraException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from guided_diffusion.cli.errors import UsageError, one_line

CONFIG_MODULE = "configs"


def compose_config(name: str, overrides: list[str]) -> DictConfig:
    """Compose ``configs/<name>.yaml`` with command-line ``key=value`` overrides.

    Raises:
        UsageError: for malformed overrides, unknown keys or options, and missing required values.
    """
    for item in overrides:
        if "=" not in item:
            raise UsageError(f"expected key=value overrides, got {item!r}")
    try:
        with initialize_config_module(version_base=None, config_module=CONFIG_MODULE):
            cfg = compose(config_name=name, overrides=overrides)
        OmegaConf.resolve(cfg)
        return cfg
    except (HydraException, OmegaConfBaseException, ValueError) as err:
        raise UsageError(one_line(err)) from err


def build(node: DictConfig, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate`` with user errors turned into :class:`UsageError`."""
    try:
        return instantiate(node, _convert_="all", **kwargs)
    except (HydraException, OmegaConfBaseException, ValueError, TypeError) as err:
        raise UsageError(one_line(err)) from err


def require(cfg: DictConfig, key: str) -> Any:
    """A value that must be set (not ``???``).

    Raises:
        UsageError: naming the key when it is missing.
    """
    if OmegaConf.is_missing(cfg, key):
        raise UsageError(f"{key}=... is required")
    return cfg[key]


def to_container(cfg: DictConfig) -> dict[str, Any]:
    container = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(container, dict)
    return {str(k): v for k, v in container.items()}
