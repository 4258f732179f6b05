"""Command line: ``python -m iaead_core {train,score,runs,datasets,methods,experiment} ...``.

:func:`main` parses the arguments (:mod:`~iaead_core.cli.parser`), runs the command
(:mod:`~iaead_core.cli.commands` for ``train``, ``runs``, ``datasets`` and ``methods``;
:mod:`~iaead_core.cli.images` for ``score``; :mod:`~iaead_core.cli.experiments` for
``experiment``) and turns errors into exit codes: 0 ok, 2 bad input, 3 data set missing or
damaged, 4 training diverged, 130 interrupted.

Only the standard library, :mod:`iaead_core.config` and :mod:`iaead_core.data` (both free of
torch) are imported before the arguments are parsed, so ``--help`` and a mistyped option
answer at once; torch is loaded only when a command needs it.
"""

from __future__ import annotations

import argparse
import re
import signal
import sys
from typing import Sequence

from iaead_core.cli.commands import _datasets, _methods, _runs, _train
from iaead_core.cli.common import CONFIG_OPTIONS
from iaead_core.cli.experiments import run_experiment_command
from iaead_core.cli.images import run_score
from iaead_core.cli.parser import build_parser
from iaead_core.data import DatasetCorruptError, DatasetUnavailableError, OFFLINE_DEFAULT
__all__ = ["main"]


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _option_hint(message: str) -> str:
    """``" (option --lr-step)"`` when an error message starts with a config field's name."""
    m = re.match(r"(?:unknown )?(\w+)", message)
    flag = CONFIG_OPTIONS.get(m.group(1)) if m else None
    return f" (option {flag})" if flag else ""


def _data_hint(e: DatasetUnavailableError, args: argparse.Namespace) -> str:
    cfg = getattr(args, "_cfg", None)
    if isinstance(e, DatasetCorruptError):
        return ("hint: delete the damaged file, then run again (downloads are on unless "
                "--no-download), or copy an intact file there")
    if cfg is not None and not cfg.download:
        return (f"hint: run without --no-download (or with --download) to fetch the files where "
                f"network access exists, or use --dataset {OFFLINE_DEFAULT}, which needs none")
    return (f"hint: the download needs network access; otherwise place the files there "
            f"yourself, or use --dataset {OFFLINE_DEFAULT}, which needs none")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (0 ok, 2 bad input, 3 data set missing or damaged,
    4 diverged, 130 interrupted)."""
    args = build_parser().parse_args(argv)
    # `kill` (SIGTERM) ends a run like Ctrl-C: the run folder is closed as "stopped".
    signal.signal(signal.SIGTERM, _interrupt)
    commands = {"train": _train, "runs": _runs, "datasets": _datasets, "methods": _methods,
                "score": run_score, "experiment": run_experiment_command}
    try:
        return commands[args.command](args)
    except DatasetUnavailableError as e:
        print(f"error: {e}\n{_data_hint(e, args)}", file=sys.stderr)
        return 3
    except ValueError as e:
        print(f"error: {e}{_option_hint(str(e))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: the completed epochs are kept in the run folder", file=sys.stderr)
        return 130
    except Exception as e:
        engine = sys.modules.get(f"{__package__}.engine")
        if engine is not None and isinstance(e, engine.NonFiniteLossError):
            print(f"error: {e}", file=sys.stderr)
            return 4
        raise
