"""The command line, ``python -m iaead_core`` (or ``iaead``): :mod:`~iaead_core.cli.main`
parses with the parser of :mod:`~iaead_core.cli.parser` and dispatches to the commands
(:mod:`~iaead_core.cli.commands`: ``train``, ``runs``, ``datasets``, ``methods``) and to one
module per command group (``experiments``, ``images``), which share
:mod:`~iaead_core.cli.common`. The top layer of the core: nothing imports it but ``__main__``.
"""
