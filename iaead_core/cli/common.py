"""What the command groups share: the ``train`` options of every TrainConfig field, and the
config they build."""

from __future__ import annotations

import argparse

from iaead_core.config import TrainConfig, preset_config
from iaead_core.data import resolve_data_root
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
