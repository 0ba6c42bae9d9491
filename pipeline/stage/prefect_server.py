"""How long a flow run without a Prefect server waits for the temporary one Prefect starts for it.

With no ``PREFECT_API_URL``, Prefect starts a temporary API server in a subprocess and gives up after
``PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS`` (20 s by default). Its start-up (imports, database
migrations) takes several seconds on an idle machine and more than 20 on a loaded shared server or a CI runner,
where the run then fails before any work starts. Our runs take minutes to days, so waiting longer costs nothing.
"""
from __future__ import annotations

import contextlib
import os
from typing import Iterator

STARTUP_TIMEOUT_ENV = "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"
STARTUP_TIMEOUT_S = 180


@contextlib.contextmanager
def patient_temporary_server() -> Iterator[None]:
    """Within the block, Prefect waits up to 180 s for its temporary server, unless the user chose a value
    (the environment variable above) or runs against a server of their own (``PREFECT_API_URL``)."""
    from prefect.settings import PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS, temporary_settings

    if os.environ.get(STARTUP_TIMEOUT_ENV) or os.environ.get("PREFECT_API_URL"):
        yield
        return
    with temporary_settings({PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS: STARTUP_TIMEOUT_S}):
        yield
