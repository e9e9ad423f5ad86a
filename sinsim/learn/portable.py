"""Portable mode (``training.portable: true``): the same tables on any x86-64 processor.

Torch's CPU kernels pick their code by processor: ATen's vectorised kernels by instruction set
(AVX2, AVX-512), MKL's BLAS by its own dispatch (another path on AMD than on Intel), oneDNN's
and NNPACK's convolutions by theirs, numba (ALQ's kernels) compiles for the host. Each path
rounds differently in the last bits, and training carries that into the accuracy. Portable mode
pins every such choice to one generic path:

- :data:`PINS`: environment variables the libraries read once, when they first run. The safe
  time to set them is before the process starts: ``python -m sinsim`` re-executes itself with
  them for a portable scenario (:func:`environment`), and its worker processes (training
  helpers, a sweep's pool) inherit them. ``python -m sinsim.learn.portable CMD ...`` runs a
  command with them (a Dask worker for portable sweeps, say); without a command it prints them
  as ``export`` lines.
- :func:`apply`: the torch settings of a process (oneDNN and NNPACK off, one thread), applied
  by every process that trains while the environment holds the pins.

:func:`in_effect` checks what the libraries actually took (ATen's capability, MKL's branch), so
``summary.json`` records whether a run was portable. The cost: LeNet-5 trains about 1.6x slower
(the README's "Portable mode").
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Mapping
from pathlib import Path

PINS: dict[str, str] = {
    # ATen's vectorised CPU kernels (elementwise, reductions, softmax, the optimiser's updates):
    # the DEFAULT build (x86-64 baseline code, no FMA), not the AVX2 or AVX-512 build
    "ATEN_CPU_CAPABILITY": "default",
    # MKL (torch's BLAS: the linear layers, and the convolutions' GEMMs with oneDNN off): the
    # conditional-numerical-reproducibility branch that runs the same on every x86-64
    # processor, Intel or AMD (unset, and every named branch on AMD, it picks by processor)
    "MKL_CBWR": "COMPATIBLE",
    # oneDNN's instruction-set cap: unused while apply() turns torch's oneDNN off, kept so that
    # nothing that calls it picks by processor
    "ONEDNN_MAX_CPU_ISA": "SSE41",
    "DNNL_MAX_CPU_ISA": "SSE41",  # the same, under oneDNN's older name
    # one thread: OpenMP's and MKL's pools (a parallel reduction's order follows the threads)
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}
# Not pinned: numba (ALQ's CPU kernels) compiles for the host, but without fastmath LLVM keeps
# every float operation in source order and fuses no multiply-add, so the host's code rounds as
# a generic x86-64's (measured: the same tables with NUMBA_CPU_NAME=generic, which is slower).

_MKL_CBWR_BRANCH, _MKL_CBWR_COMPATIBLE = 1, 3  # mkl_cbwr_get(MKL_CBWR_BRANCH), mkl.h


def environment(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: this process's environment) with the pins set; they win over any
    value ``base`` has."""
    return {**(os.environ if base is None else base), **PINS}


def pinned(env: Mapping[str, str] | None = None) -> bool:
    """Does ``env`` (default: this process's environment) hold every pin?"""
    env = os.environ if env is None else env
    return all(env.get(k) == v for k, v in PINS.items())


def pin_this_process() -> None:
    """Set the pins in this process's environment: ATen and MKL take them at their first
    kernel, so they hold where torch, loaded or not, has run none yet (``departures(False)``
    tells). Processes started from here inherit them."""
    os.environ.update(PINS)


def apply() -> None:
    """This process's torch settings of portable mode: convolutions without oneDNN (its JIT
    kernels and their blocking follow the processor) and without NNPACK (torch's choice for
    batches of 16 and more with oneDNN off; AVX2 code where there is AVX2), so through im2col
    and MKL; one intra-op thread."""
    import torch

    torch.backends.mkldnn.enabled = False
    torch.backends.nnpack.set_flags(False)  # (``nnpack.enabled = ...`` would change nothing)
    torch.set_num_threads(1)


def cpu_capability() -> str:
    """The instruction set of ATen's CPU kernels in this process (``DEFAULT``, ``AVX2``,
    ``AVX512``, ...)."""
    import torch

    return torch.backends.cpu.get_cpu_capability()


def mkl_branch() -> int | None:
    """MKL's reproducibility branch in this process (3: COMPATIBLE), None where torch's MKL
    cannot be asked."""
    import torch

    try:
        lib = ctypes.CDLL(str(Path(torch.__file__).parent / "lib" / "libtorch_cpu.so"))
        get = lib.mkl_serv_cbwr_get
    except (OSError, AttributeError):
        return None
    get.restype, get.argtypes = ctypes.c_int, [ctypes.c_int]
    return int(get(_MKL_CBWR_BRANCH))


def departures(settings: bool = True) -> list[str]:
    """What keeps this process from being portable (empty: it is): a pin missing from its
    environment, a library that did not take one (it ran before the pin was set) and, with
    ``settings``, a setting of :func:`apply` not made."""
    import torch

    off = [f"{k}={v} not in the environment" for k, v in PINS.items() if os.environ.get(k) != v]
    if (cap := cpu_capability()) != "DEFAULT":
        off.append(f"ATen runs {cap} kernels")
    if (branch := mkl_branch()) not in (None, _MKL_CBWR_COMPATIBLE):
        off.append(f"MKL runs its reproducibility branch {branch}, not COMPATIBLE (3)")
    if not settings:
        return off
    if torch.backends.mkldnn.enabled:
        off.append("torch's oneDNN is on")
    if torch._C._get_nnpack_enabled():
        off.append("torch's NNPACK is on")
    if (threads := torch.get_num_threads()) != 1:
        off.append(f"{threads} torch threads")
    return off


def in_effect() -> bool:
    """Is this process portable: the pins in its environment and taken by ATen and MKL (not so
    when they ran before the pins were set), and :func:`apply`'s settings made?"""
    return not departures()


NOT_PINNED = ("this process started without the portable environment (torch reads it once, "
              "when it loads): run it with `python -m sinsim`, or start it under `python -m "
              "sinsim.learn.portable COMMAND ...` (a Dask worker, say)")


def main(argv: list[str]) -> int:
    """``python -m sinsim.learn.portable [COMMAND ...]``: run COMMAND with the pins; without
    one, print them as shell ``export`` lines."""
    if not argv:
        print("\n".join(f"export {k}={v}" for k, v in PINS.items()))
        return 0
    try:
        os.execvpe(argv[0], argv, environment())
    except OSError as e:
        print(f"sinsim.learn.portable: cannot run {argv[0]}: {e.strerror}", file=sys.stderr)
        return 127


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
