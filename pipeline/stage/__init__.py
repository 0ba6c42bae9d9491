"""DVC-stage machinery: ``entry`` (the one entry every stages/*.py calls), ``per_video`` (incremental
per-video stages), ``executor`` (where the per-video work runs: in-process, worker processes, or an executor
handed over from ``pipeline/orchestration``: Dask) and ``progress``."""
