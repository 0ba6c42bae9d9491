"""DVC-stage machinery: ``entry`` (the one entry every stages/*.py calls), ``per_video`` (incremental
per-video stages) and ``executor`` (where the per-video work runs: in-process, worker processes, Dask)."""
