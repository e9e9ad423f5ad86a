"""No worker process outlives the process that started it.

A run's training helpers and a sweep's worker processes call :func:`exit_with_parent` first
thing. It starts a daemon thread that waits on the parent's *sentinel* (the pipe that
``multiprocessing`` keeps from the parent to each child it starts: it reads end-of-file when the
parent is gone, however it went, ``SIGKILL`` included) and then ends this process at once with
``os._exit``, whatever its main thread is doing (a training step, a blocking queue read). The
wait costs nothing while the parent lives. A process started some other way (no
``multiprocessing`` parent) polls ``os.getppid()`` instead: it changes when the parent dies.

For a process started by a fork server, the sentinel is the pipe of the process that asked for
it (the run), not of the fork server. The fork server itself would exit only once it is back in
its loop, after its preload has imported torch (seconds, more on a busy machine) and after the
last of its children has gone; so it imports :mod:`sinsim._forkserver_preload` first, which
watches its parent id. Chains work link by link: a sweep worker that exits closes the sentinels
of the training helpers it started, and the fork server of its run sees its parent change.

``prctl(PR_SET_PDEATHSIG)`` was not used: it fires when the parent *thread* that started the
child ends (the training helpers start from a short-lived thread), and Linux only.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import threading
import time

_POLL_S = 0.2  # how often a process without a multiprocessing parent looks at its parent id
_watched_in: int | None = None  # the process whose watcher runs (a forked child has none)


def exit_with_parent(code: int = 1) -> None:
    """End this process with ``code`` as soon as its parent process is gone (once a process)."""
    global _watched_in
    if _watched_in == os.getpid():
        return
    _watched_in = os.getpid()
    parent = multiprocessing.parent_process()
    sentinel = getattr(parent, "sentinel", None)
    ppid = os.getppid()

    def watch() -> None:
        if sentinel is not None:
            multiprocessing.connection.wait([sentinel])  # returns when the parent is gone
        else:
            while os.getppid() == ppid:
                time.sleep(_POLL_S)
        os._exit(code)

    threading.Thread(target=watch, name="sinsim-exit-with-parent", daemon=True).start()
