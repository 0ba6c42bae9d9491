"""Dataset adapters (iPER, SoloDance, any folder) and the registry kept in params.yaml."""
from pipeline.datasets.base import DatasetError, Scan, UnsafePath, VideoEntry
from pipeline.datasets.registry import (add_dataset, describe, probe_readable, read_unreadable, read_video_list,
                                        scan_dataset, write_video_list)

__all__ = ["DatasetError", "Scan", "UnsafePath", "VideoEntry", "add_dataset", "describe", "probe_readable",
           "read_unreadable", "read_video_list", "scan_dataset", "write_video_list"]
