"""Prefect orchestration: the flow ``remot`` and its deployment ``remot/train`` (``flow``)."""
