"""What the command groups share: the ``train`` options of every TrainConfig field, the
config they build, and how a value is written (``_short``)."""

from __future__ import annotations

import argparse
from typing import Any

from iaead_core.config import TrainConfig, preset_config
from iaead_core.data import resolve_data_root
from iaead_core.numbers import format_lambda
__all__ = ["CONFIG_OPTIONS", "config_from_args"]

#: TrainConfig field → its ``train`` option: every field has one (``preset`` is the
#: ``--preset`` choice itself; ``extra`` holds the methods' own settings, set with --option).
CONFIG_OPTIONS: dict[str, str] = {
    name: "--option" if name == "extra" else "--" + name.replace("_", "-")
    for name in TrainConfig.__dataclass_fields__ if name != "preset"
}


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The validated :class:`TrainConfig` of parsed ``train`` arguments: the preset's settings,
    then every option given (options left out are None and keep the preset's value).

    Raises
    ------
    ValueError
        As :meth:`TrainConfig.validate`, naming the field and its allowed range.
    """
    overrides = {name: getattr(args, name) for name in CONFIG_OPTIONS
                 if name not in ("method", "extra")}
    overrides["data_root"] = str(resolve_data_root(args.data_root).resolve())
    if getattr(args, "options", None):
        overrides["extra"] = dict(args.options)  # checked by the method when it is built
    return preset_config(args.preset, method=args.method, **overrides)


def _short(v: Any) -> str:
    """A value as the project writes it: floats as :func:`~iaead_core.numbers.format_lambda`
    (5e-5, not 5e-05; 0.1), 3000; None → "none"; booleans on / off."""
    if v is None:
        return "none"
    if isinstance(v, bool):
        return "on" if v else "off"
    if isinstance(v, float):
        return format_lambda(v)
    return str(v)
