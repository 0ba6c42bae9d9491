"""Keep native libraries' log lines (MediaPipe / TFLite / absl C++ logging) off the terminal unless asked for.

MediaPipe's C++ code writes lines such as ``W0000 00:00:... inference_feedback_manager.cc:114] ...`` straight to
file descriptor 2; neither ``GLOG_minloglevel`` nor ``TF_CPP_MIN_LOG_LEVEL`` silences them in mediapipe 0.10.21
(checked). So the command-line entry points route fd 2 through a filter thread that drops exactly those lines
and forwards everything else (Python warnings, errors, progress bars) unchanged. ``--verbose`` skips it.
"""
from __future__ import annotations

import atexit
import os
import re
import sys
import threading

# absl/glog line prefix "W0000 00:00:1795977201.906757    3425 file.cc:114] " (absl writes the seconds since the
# epoch where glog writes "SS": any number of digits), and the two banner lines.
NATIVE_LINE = re.compile(rb"^(?:[WIEF]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ [\w.\-/]+:\d+\] "
                         rb"|WARNING: All log messages before absl::InitializeLog\(\) is called"
                         rb"|INFO: Created TensorFlow Lite )")
_installed = False


def _pump(read_fd: int, out_fd: int) -> None:
    pending = b""
    while True:
        try:
            chunk = os.read(read_fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        pending += chunk
        # "\r" ends a segment too, so progress bars (which redraw with "\r") still show as they go.
        parts = re.split(rb"(\r|\n)", pending)
        pending = parts.pop()
        for text, end in zip(parts[0::2], parts[1::2]):
            if not NATIVE_LINE.match(text):
                os.write(out_fd, text + end)
    if pending and not NATIVE_LINE.match(pending):
        os.write(out_fd, pending)


def quiet_native_logs() -> None:
    """Filter native log lines out of this process's fd 2 (and its children's) from now on; idempotent."""
    global _installed
    if _installed:
        return
    _installed = True
    sys.stderr.flush()
    original = os.dup(2)
    read_fd, write_fd = os.pipe()
    os.dup2(write_fd, 2)
    os.close(write_fd)
    thread = threading.Thread(target=_pump, args=(read_fd, original), name="native-log-filter", daemon=True)
    thread.start()

    def restore() -> None:
        sys.stderr.flush()
        os.dup2(original, 2)  # drops this process's last write end of the pipe: the filter sees EOF and drains
        thread.join(timeout=2.0)

    atexit.register(restore)
