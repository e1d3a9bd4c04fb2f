"""Keep native libraries' chatter (TensorFlow's converter prints to fd 1 and 2) out of edgeprune's output."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from typing import Iterator

log = logging.getLogger(__name__)


@contextlib.contextmanager
def native_output_to_log(what: str) -> Iterator[None]:
    """Send what native code writes to stdout/stderr during the block to the debug log instead."""
    if log.isEnabledFor(logging.DEBUG):
        yield
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 1)
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            capture.seek(0)
            chatter = capture.read().decode("utf-8", "replace").strip()
            if chatter:
                log.debug("%s printed:\n%s", what, chatter)
