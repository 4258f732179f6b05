"""How the project writes numbers: the one λ format, shared by the library, the command line
(which must not import numpy or pandas before parsing) and the lab. Pure Python."""

from __future__ import annotations

__all__ = ["format_lambda"]


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
