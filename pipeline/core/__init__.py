"""The bottom of the pipeline, imported by every other package and importing none: errors, the params.yaml
schema, label sets, atomic writes, run logs, artifact paths, checkpoints, file digests, threads and devices."""
