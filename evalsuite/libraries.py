"""Keep the libraries' start-up chatter out of the user's terminal and CI log.

TensorFlow's C++ logging, absl's pre-init notice and CUDA probing on a
machine without a GPU write straight to file descriptor 2, before and outside
Python's control, on every run. Those known lines are dropped by a small
filter on descriptor 2; every other line (the project's, a real library
warning, a crash) passes unchanged. TF's and TFMA's Python deprecation
notices are silenced the same way. `-v` / `--debug` turn all of it off.
"""

from __future__ import annotations

import atexit
import logging
import os
import re
import sys
import threading
import warnings

# Lines known to carry no information for this run.
NOISE = re.compile(
    rb"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    rb"|[IWE]\d{4} [\d:.]+\s+\d+ (cudart_stub|cuda_platform|cuda_executor|cuda_diagnostics|gpu_device|"
    rb"node_def_util|cpu_feature_guard|port)\.cc:\d+\].*"
    rb"|To enable the following instructions: .* in other operations, rebuild TensorFlow .*"
    rb"|This TensorFlow binary is optimized to use available CPU instructions.*)$"
)

_filter_thread: threading.Thread | None = None


def quiet_libraries(verbose: bool = False) -> None:
    """Silence known library noise for this process (and the workers it starts)."""
    global _filter_thread
    if verbose or _filter_thread is not None:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    for name in ("absl", "tensorflow", "apache_beam"):
        logging.getLogger(name).setLevel(logging.ERROR)
    for module in ("tensorflow", "tf_keras", "keras", "tensorflow_model_analysis", "apache_beam", "tfx_bsl"):
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=module)
        warnings.filterwarnings("ignore", category=FutureWarning, module=module)
    _filter_thread = _filter_descriptor_2()


def _filter_descriptor_2() -> threading.Thread | None:
    try:
        sys.stderr.flush()
        real = os.dup(2)
        read_end, write_end = os.pipe()
        os.dup2(write_end, 2)
        os.close(write_end)
    except OSError:
        return None

    def forward() -> None:
        pending = b""
        with os.fdopen(read_end, "rb", buffering=0) as source:
            while chunk := source.read(65536):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                kept = b"".join(line + b"\n" for line in lines if not NOISE.match(line))
                if kept:
                    os.write(real, kept)
        if pending and not NOISE.match(pending):
            os.write(real, pending)

    thread = threading.Thread(target=forward, name="stderr-filter", daemon=True)
    thread.start()

    def restore() -> None:
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os.dup2(real, 2)  # closes the pipe's last writer in this process: the filter drains and ends
        thread.join(timeout=2)

    atexit.register(restore)
    return thread
