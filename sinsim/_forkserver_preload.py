"""Imported first in the fork server of a run's training helpers (``set_forkserver_preload``),
before the modules that import torch: the server then ends as soon as the run's process is gone,
even while it is still importing (see :mod:`sinsim._lifeline`). The server is started by
``spawn``, not as a ``multiprocessing`` child, so the watch polls its parent id. The helpers it
forks do not inherit the thread; each starts its own watch on its sentinel."""

from sinsim._lifeline import exit_with_parent

exit_with_parent()
