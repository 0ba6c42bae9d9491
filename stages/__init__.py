"""The DVC stages, one module each, every one a single call through ``pipeline/stage/entry.py``.

Every stage process starts here, above both the stage machinery and ``pipeline/orchestration``, so this is where
the Prefect executors (``local-dask``, ``dask``) are handed to the machinery, which may not import them (the
orchestration package's training flow sits above the stage packages).
"""
from pipeline.orchestration.dask_executors import DASK_EXECUTORS
from pipeline.stage.executor import provide_executors

provide_executors(DASK_EXECUTORS)
