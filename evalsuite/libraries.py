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
import subprocess
import sys
import warnings

# Lines known to carry no information for this run.
NOISE = re.compile(
    rb"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    rb"|[IWE]\d{4} [\d:.]+\s+\d+ (cudart_stub|cuda_platform|cuda_executor|cuda_diagnostics|gpu_device|"
    rb"node_def_util|cpu_feature_guard|port)\.cc:\d+\].*"
    rb"|To enable the following instructions: .* in other operations, rebuild TensorFlow .*"
    rb"|This TensorFlow binary is optimized to use available CPU instructions.*"
    rb"|WARNING:absl:Tensorflow version \(.*\) found\. Note that TFMA support for TF 2\.0 is currently in beta)$"
)

_filter: subprocess.Popen | None = None

# The filter runs in its own small process: it reads until every writer is gone,
# so whatever a crashing process wrote last still reaches the terminal.
_FILTER_CODE = """
import re, sys
noise = re.compile(sys.argv[1].encode())
out = sys.stdout.buffer
for line in sys.stdin.buffer:
    if not noise.match(line.rstrip(b"\\n")):
        out.write(line)
        out.flush()
"""


def quiet_libraries(verbose: bool = False) -> None:
    """Silence known library noise for this process (and the workers it starts)."""
    global _filter
    if verbose or _filter is not None:
        return
    # 2 hides TensorFlow's C++ INFO and WARNING lines; its ERROR lines still come, and the
    # known harmless ones (CUDA probing without a GPU) are dropped by the filter below.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    for name in ("absl", "tensorflow", "apache_beam"):
        logging.getLogger(name).setLevel(logging.ERROR)
    for module in ("tensorflow", "tf_keras", "keras", "tensorflow_model_analysis", "apache_beam", "tfx_bsl"):
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=module)
        warnings.filterwarnings("ignore", category=FutureWarning, module=module)
    _filter = _filter_descriptor_2()


def _filter_descriptor_2() -> subprocess.Popen | None:
    try:
        sys.stderr.flush()
        real = os.dup(2)
        process = subprocess.Popen(
            [sys.executable, "-c", _FILTER_CODE, NOISE.pattern.decode()],
            stdin=subprocess.PIPE,
            stdout=real,
            stderr=real,
            close_fds=True,
        )
        os.dup2(process.stdin.fileno(), 2)
        process.stdin.close()  # fd 2 now holds the only write end in this process
    except OSError:
        return None

    def restore() -> None:
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os.dup2(real, 2)  # this process stops writing; the filter ends once its other writers have too
        try:
            process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            pass

    atexit.register(restore)
    return process
