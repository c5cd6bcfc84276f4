"""Support for the thin workflow scripts and the CLI: logging set-up and clean failures.

No Snakemake import here: :func:`run_script` takes the ``snakemake`` object scripts receive.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

from nucseg.errors import NucsegInputError

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(log_path: str | None = None, level: int = logging.INFO) -> None:
    """Send logging at ``level`` (INFO by default) to ``log_path`` (or stderr when ``None``)."""
    handler = (
        logging.FileHandler(log_path, mode="w") if log_path else logging.StreamHandler(sys.stderr)
    )
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def fail(message: str) -> None:
    """Print one ``nucseg: error: ...`` line on stderr (line breaks inside ``message``, e.g.
    from a library's exception text, become spaces) and exit with status 1."""
    print(f"nucseg: error: {' '.join(message.split())}", file=sys.stderr)
    raise SystemExit(1)


def run_script(main: Callable[[Any], None], snakemake: Any) -> None:
    """Run a workflow script's ``main(snakemake)`` with logging to ``snakemake.log[0]``.

    A :class:`NucsegInputError` becomes one error line on stderr (and in the log) and a
    non-zero exit, without a traceback.
    """
    configure_logging(snakemake.log[0] if len(snakemake.log) else None)
    try:
        main(snakemake)
    except NucsegInputError as error:
        logging.getLogger("nucseg").error("%s", error)
        fail(str(error))
