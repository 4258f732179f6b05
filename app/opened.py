"""Runs opened on the Runs page from another page, through the address.

The Experiments page links each cell of its tables to ``runs?experiment=<folder>&runs=<id>,<id>``
(see :func:`app.views.experiment_results.runs_link`). The address carries the selection, so the link
also works in a new tab or as a bookmark. The Runs page then lists those runs of that
experiment's ``runs/`` folder instead of every run of the lab's runs folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import streamlit as st

from .views.experiment_results import QUERY_EXPERIMENT, QUERY_RUNS
from .views.experiment_spec import experiments_root
from .views.runs import RunIndex

__all__ = ["OpenedRuns", "opened_runs"]


@dataclass
class OpenedRuns:
    """Runs of one experiment that the address asks the Runs page to show.

    Attributes
    ----------
    folder : Path — the experiment folder; index : RunIndex of its ``runs/``
    ids : list of str — the run ids asked for (in the link's order)
    """

    folder: Path
    index: RunIndex
    ids: list[str]

    def rows(self) -> list[dict[str, Any]]:
        """:meth:`RunIndex.rows` of the asked runs that have a folder."""
        wanted = set(self.ids)
        return [r for r in self.index.rows() if r.get("run_id") in wanted]


@st.cache_resource(show_spinner=False, max_entries=16)
def _index(runs_dir: str) -> RunIndex:
    return RunIndex(runs_dir)


def opened_runs() -> OpenedRuns | None:
    """The runs the address opens (None without ``?experiment=``), after drawing a line that
    says which, with a link back to every run. A folder name that is not an experiment under
    the experiments root is refused in words (never a path outside it)."""
    name = st.query_params.get(QUERY_EXPERIMENT)
    if not name:
        return None
    ids = [r for r in (st.query_params.get(QUERY_RUNS) or "").split(",") if r]
    root = experiments_root()
    folder = (root / name).resolve()
    if folder.parent != root or not (folder / "runs").is_dir():
        st.error(f"The address asks for experiment {name!r}, which is not an experiment folder "
                 f"under {root}; showing every run instead.")
        return None
    opened = OpenedRuns(folder, _index(str(folder / "runs")), ids)
    found = len(opened.rows())
    st.info(f"Showing **{found} of the {len(ids)} runs** of one cell of experiment **{name}** "
            f"(folder `{folder / 'runs'}`)"
            + (f"; {_runs_word(len(ids) - found)} no folder yet (not started)." if found < len(ids) else ".")
            + " The Runs page opened from the menu lists the lab's own runs (Train and Your "
              "images); every run of an experiment, with its state (stopped and failed ones "
              "too), is listed on the Experiments page.")
    return opened


def _runs_word(n: int) -> str:
    return "1 has" if n == 1 else f"{n} have"
