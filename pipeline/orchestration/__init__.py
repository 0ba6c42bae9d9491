"""Prefect and Dask, all of it: the flow ``remot`` and its deployment ``remot/train`` (``flow``), the executors
``local-dask`` and ``dask`` of the preprocessing stages (``dask_executors``), the run's private Prefect API server
(``prefect_server``) and the local Dask cluster with mutual TLS (``dask_cluster``)."""
