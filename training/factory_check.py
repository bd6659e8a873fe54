"""A user's model factory, tried in a child process before training writes anything.

User code can end the process that imports it: `sys.exit`, `os._exit`, a signal,
an endless loop. Tried here first, in a process of its own with a time limit,
whatever it does becomes one line and exit 2 in the command that asked, and the
run folder is not touched. The training itself then runs in-process, where
TensorFlow is already imported and the weights come out as they always did.

    python -m training.factory_check MODEL HEIGHT WIDTH CHANNELS CLASSES
"""

from __future__ import annotations

import os
import subprocess
import sys

from evalsuite.errors import InputError, signal_name

TIMEOUT_SECONDS = float(os.environ.get("EVALSUITE_FACTORY_TIMEOUT", "300"))
OK = "factory ok"


def check_factory(model: str, spec, timeout: float = TIMEOUT_SECONDS) -> None:
    """Import and call `model`'s factory in a child process; any way it fails is an InputError naming it."""
    command = [sys.executable, "-m", "training.factory_check", model, *map(str, spec.input_shape), str(spec.num_classes)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONHASHSEED": "0"}
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, env=env, start_new_session=True
        )
    except subprocess.TimeoutExpired:
        raise InputError(f"--model {model}: the factory did not return within {timeout:.0f}s (an endless loop?)") from None
    said = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    if done.returncode == 0 and done.stdout.strip().endswith(OK):
        return
    if said:
        raise InputError(said[-1].removeprefix("error: "))
    if done.returncode < 0:
        name = signal_name(-done.returncode)
        raise InputError(f"--model {model}: the factory's process was killed by {name} while building the model")
    raise InputError(f"--model {model}: the factory ended its process (exit {done.returncode}) instead of returning a model")


def main(argv: list[str]) -> int:
    from evalsuite.data.spec import DataSpec
    from evalsuite.errors import run_cli
    from training.model import build_model

    model, height, width, channels, classes = argv

    def work() -> int:
        build_model(DataSpec(int(height), int(width), int(channels), int(classes)), model)
        print(OK, flush=True)
        return 0

    return run_cli(work, debug=False)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
