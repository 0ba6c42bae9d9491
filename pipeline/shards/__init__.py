"""WebDataset shards of temporal windows: ``schema`` (field names, format version), ``windows`` (which windows,
which source frame), ``writer``, ``reader`` (the training/evaluation stream) and the shards ``stage``."""
