"""Command line: ``python -m iaead_core {train,score,runs,datasets,methods,experiment} ...``.

:func:`main` parses the arguments (:mod:`~iaead_core.cli.parser`), runs the command
(:mod:`~iaead_core.cli.commands` for ``train``, ``runs``, ``datasets`` and ``methods``;
:mod:`~iaead_core.cli.images` for ``score``; :mod:`~iaead_core.cli.experiments` for
``experiment``) and turns errors into exit codes: 0 ok, 2 bad input (a bad value, an unknown
or unreadable run), 3 data set missing or damaged, 4 training diverged, 5 the results cannot
be written (a read-only or full disk, an output path that is a folder, a device, a FIFO or a
symbolic link), 130 interrupted.

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
from iaead_core.runs import RunError
from iaead_core.storage import StorageError
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


#: Exit status when the results cannot be written (:class:`~iaead_core.storage.StorageError`).
EXIT_STORAGE = 5
#: Exit status of a run whose loss became NaN or infinite.
EXIT_DIVERGED = 4


def _is_diverged(e: BaseException) -> bool:
    """Whether ``e`` is the engine's NonFiniteLossError (checked without importing torch: the
    engine module is loaded only if a command trained)."""
    engine = sys.modules.get("iaead_core.training.engine")
    return engine is not None and isinstance(e, engine.NonFiniteLossError)


def _storage_hint(args: argparse.Namespace) -> str:
    if args.command == "experiment":
        return ("hint: choose a writable experiments folder with --out or IAEAD_EXPERIMENTS_DIR, "
                "or free space on the disk")
    if args.command == "score":
        return ("hint: give --csv a new file name in a writable folder, or free space on the "
                "disk of the run folder")
    return "hint: choose a writable runs folder with --out or IAEAD_RUNS_DIR, or free space on the disk"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (0 ok, 2 bad input, 3 data set missing or damaged,
    4 diverged, 5 the results cannot be written, 130 interrupted)."""
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
    except StorageError as e:
        print(f"error: {e}\n{_storage_hint(args)}", file=sys.stderr)
        return EXIT_STORAGE
    except RunError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except ValueError as e:
        print(f"error: {e}{_option_hint(str(e))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: the completed epochs are kept in the run folder", file=sys.stderr)
        return 130
    except Exception as e:
        if _is_diverged(e):
            print(f"error: {e}", file=sys.stderr)
            return EXIT_DIVERGED
        raise
