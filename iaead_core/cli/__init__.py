"""The command line, ``python -m iaead_core`` (or ``iaead``): :mod:`~iaead_core.cli.main`
builds the parser and dispatches to one module per command group (``experiments``,
``images``), which share :mod:`~iaead_core.cli.common`. The top layer of the core: nothing
imports it but ``__main__``.
"""
