"""How the project writes numbers: the one λ format, shared by the library, the command line
(which must not import numpy or pandas before parsing) and the lab. Pure Python."""

from __future__ import annotations

import math
from collections.abc import Iterable

__all__ = ["format_lambda", "log_ticks"]


def format_lambda(lam: float | None) -> str:
    """The one λ format of the project: ``0`` → ``"0"``, ``5e-05`` → ``"5e-5"``, ``0.005`` →
    ``"5e-3"``, ``0.05`` → ``"0.05"``, ``0.5`` → ``"0.5"``, ``1e6`` → ``"1e6"`` (six
    significant digits; an exponent, without padding or ``+``, below 0.01 and from 1e6 on);
    never an SI prefix such as ``50µ`` and never a long decimal such as ``0.000005``. ``None``
    or NaN (a method without λ, e.g. Deep SVDD) → ``"—"``."""
    if lam is None or lam != lam:
        return "—"
    if lam == 0:
        return "0"
    text = f"{lam:.5e}" if abs(lam) < 0.01 else f"{lam:g}"
    mantissa, _, exponent = text.partition("e")
    if "." in mantissa and exponent:
        mantissa = mantissa.rstrip("0").rstrip(".")
    if not exponent:
        return text
    exponent = exponent.lstrip("+").lstrip("0") if not exponent.startswith("-") else \
        "-" + exponent[1:].lstrip("0")
    return f"{mantissa}e{exponent}"


def log_ticks(values: Iterable[float | None], max_ticks: int = 8) -> tuple[list[float], list[str]]:
    """Tick positions and labels for a log axis, so that a chart writes λ as the rest of the
    project does (plotly's own exponent format writes ``1e−4`` with a minus sign, or ``10µ``).

    ``values``: any iterable of floats (None, NaN, ±inf and values ≤ 0 are ignored). Returns one
    tick per decade spanning the positive finite values (every second or third decade when
    there are more than ``max_ticks``), labelled by :func:`format_lambda`: ``1e-5``, ``0.1``,
    ``1``, ``10``. Both lists are empty when no value is usable. Raises nothing."""
    v = [float(x) for x in values if x is not None and math.isfinite(float(x)) and float(x) > 0]
    if not v:
        return [], []
    lo, hi = math.floor(math.log10(min(v))), math.ceil(math.log10(max(v)))
    if lo == hi:
        hi += 1
    step = max(1, math.ceil((hi - lo + 1) / max_ticks))
    vals = [10.0 ** k for k in range(lo, hi + 1, step)]
    return vals, [format_lambda(x) for x in vals]
