"""Framework start-up noise kept off the terminal unless asked for (``ZOO_VERBOSE=1``).

TensorFlow 2.21 logs through Abseil before anything can configure it: ``TF_CPP_MIN_LOG_LEVEL``
no longer hides the ``I0000 ... port.cc`` and ``cudart_stub.cc`` lines of its import, nor the
``E0000 ... failed call to cuInit`` that every machine without a GPU prints when TensorFlow first
looks for devices. Those lines are written to file descriptor 2 by C++ code, so the only way to
hold them back is to point that descriptor elsewhere while TensorFlow starts; what was written is
replayed if the start fails, so a real error is never lost.
"""

import contextlib
import os
import sys
import tempfile
import warnings

VERBOSE_VARIABLE = "ZOO_VERBOSE"
NOISY_MODULES = r"(keras|tensorflow|absl|google\.protobuf|tf_keras)(\.|$)"


def verbose() -> bool:
    """Whether the user asked to see framework logs and warnings (``ZOO_VERBOSE=1``)."""
    return os.environ.get(VERBOSE_VARIABLE, "") not in ("", "0")


@contextlib.contextmanager
def captured_stderr():
    """File descriptor 2 sent to a temporary file for the block; replayed if the block raises."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            sink.seek(0)
            os.write(2, sink.read())
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def start_quietly(start) -> None:
    """Runs ``start`` (a framework's import and device discovery) with its start-up lines held
    back, and hides the frameworks' Python warnings from then on; with ``ZOO_VERBOSE=1`` it
    only runs ``start``."""
    if verbose():
        start()
        return
    warnings.filterwarnings("ignore", module=NOISY_MODULES)
    with captured_stderr():
        start()
