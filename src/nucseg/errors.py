"""The one exception type nucseg raises for bad input, and the helper scripts use to report it."""

from __future__ import annotations


class NucsegInputError(Exception):
    """Bad user input: the message names the file or key and says what is wrong.

    Workflow scripts and the CLI turn it into a single line on stderr and a non-zero exit,
    without a traceback.
    """
