"""Child processes that hold a journal, for the tests that are about processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path


def hold(path: Path, body: str = "", *, setup: str = "") -> subprocess.Popen[str]:
    """A child that runs ``setup``, opens the journal, runs ``body``, prints 'ready', waits."""
    script = "\n".join(
        [
            "import sys, time",
            "from plabdata.jobs._journal import Journal",
            textwrap.dedent(setup),
            f"journal = Journal({str(path)!r}, plugin_id='p1', job='events')",
            textwrap.dedent(body),
            "print('ready', flush=True)",
            "time.sleep(60)",
        ]
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=os.getcwd()
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "ready"
    return child


def kill(child: subprocess.Popen[str], sig: int = signal.SIGKILL) -> None:
    child.send_signal(sig)
    child.wait(timeout=10)
