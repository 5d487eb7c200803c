"""Leave the process without interpreter teardown once a command has finished.

The Temporal client's Rust runtime keeps native threads that can touch the GIL while
CPython finalizes, which aborts the process (SIGABRT) after the work is done
(temporalio/sdk-python#300). Flushing our output and calling ``os._exit`` skips that
teardown and keeps the exit code honest.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from collections.abc import Callable
from typing import NoReturn


def run_then_exit(command: Callable[[], object]) -> NoReturn:
    """Run ``command``; exit with its exit code (0 if it returns, 1 on an uncaught error)."""
    code = 0
    try:
        command()
    except SystemExit as exit_request:
        if exit_request.code is None:
            code = 0
        elif isinstance(exit_request.code, int):
            code = exit_request.code
        else:
            print(exit_request.code, file=sys.stderr)
            code = 1
    except KeyboardInterrupt:
        code = 130
    except BaseException:  # noqa: BLE001 - report anything, then leave
        traceback.print_exc()
        code = 1
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001 - a closed pipe must not change the exit code
            pass
    os._exit(code)
