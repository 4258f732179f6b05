"""The lab's background tasks: slow, cacheable computations (UMAP projections) run off the page
thread. :class:`BackgroundTasks` runs them one at a time in its own thread and keeps each
result per key, so a page asks again on every rerun and draws the result once it is ready;
like the job registry (:mod:`app.jobs`) it never touches Streamlit and is testable without it.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

__all__ = ["BackgroundTasks"]

log = logging.getLogger("iaead.app.jobs")  # the name its log lines had inside app/jobs.py


class BackgroundTasks:
    """Runs slow, cacheable computations (UMAP projections) one at a time in a thread.

    :meth:`get` returns at once: ``("ready", value)``, ``("error", message)`` or
    ``("working", seconds since it was asked)``; the first call for a key queues it. Results
    are kept per key (up to ``max_results``, oldest dropped), so each (run, epoch) is
    computed once per server process.
    """

    def __init__(self, max_results: int = 64) -> None:
        self._lock = threading.Condition()
        self._results: OrderedDict[Any, tuple[str, Any]] = OrderedDict()
        self._asked: dict[Any, float] = {}
        self._todo: list[tuple[Any, Callable[[], Any]]] = []
        self._max = max_results
        self._thread = threading.Thread(target=self._work, name="iaead-tasks", daemon=True)
        self._thread.start()

    def get(self, key: Any, fn: Callable[[], Any], start: bool = True) -> tuple[str, Any]:
        """The state of ``key``'s result, queuing ``fn()`` the first time (unless ``start`` is
        False: then a result not yet asked for is ``("waiting", None)``)."""
        with self._lock:
            if key in self._results:
                self._results.move_to_end(key)
                return self._results[key]
            if key not in self._asked and not start:
                return "waiting", None
            if key not in self._asked:
                self._asked[key] = time.time()
                self._todo.append((key, fn))
                self._lock.notify()
            return "working", time.time() - self._asked[key]

    def wait(self, key: Any, timeout: float) -> tuple[str, Any] | None:
        """Block until ``key`` is done (tests); None on timeout."""
        end = time.time() + timeout
        with self._lock:
            while key not in self._results:
                left = end - time.time()
                if left <= 0:
                    return None
                self._lock.wait(left)
            return self._results[key]

    def _work(self) -> None:
        while True:
            with self._lock:
                while not self._todo:
                    self._lock.wait()
                key, fn = self._todo.pop(0)
            try:
                result = ("ready", fn())
            except Exception as e:  # shown to the user in words; the thread lives on
                log.error("background task %r failed:\n%s", key, traceback.format_exc())
                result = ("error", f"{type(e).__name__}: {e}")
            with self._lock:
                self._results[key] = result
                self._asked.pop(key, None)
                while len(self._results) > self._max:
                    self._results.popitem(last=False)
                self._lock.notify_all()
