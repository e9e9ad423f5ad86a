"""Random streams keyed by what they are for, not by call order.

Every random draw in a run comes from ``rng_for(seed, stream, *keys)``: a generator seeded with
the scenario seed, the stream's number and integer keys such as (round, client, direction). So
the same transfer sees the same loss draw in every algorithm of a run (paired comparisons), and
adding a draw in one place never shifts the draws elsewhere.
"""

from __future__ import annotations

import numpy as np

STREAMS = {"partition": 1, "select": 2, "loss": 3, "train": 4, "failure": 5, "channel": 6}


def rng_for(seed: int, stream: str, *keys: int) -> np.random.Generator:
    """A generator for ``stream`` keyed by ``keys``.

    >>> float(rng_for(0, "loss", 1, 2).random()) == float(rng_for(0, "loss", 1, 2).random())
    True
    """
    return np.random.default_rng([int(seed), STREAMS[stream], *(int(k) for k in keys)])
