"""The one download path of ``sinsim data fetch``: resumable (HTTP Range on a ``.part`` file),
checked before the rename, with a progress line. Only the standard library (and tqdm, when
installed), so ``python sinsim/learn/fetch.py`` works without the rest of sinsim."""

from __future__ import annotations

import hashlib
import http.client
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

TIMEOUT_S = 60
CHUNK = 1 << 20


class FetchError(Exception):
    """A source that did not work (the message says why)."""


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def file_digest(path: Path, algo: str) -> str:
    """The hex digest (``algo``: ``md5``, ``sha256``, ...) of a file, read in chunks."""
    h = hashlib.new(algo)
    with open(path, "rb") as src:
        while chunk := src.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def digest_check(algo: str, expected: str) -> Callable[[Path], str | None]:
    """A ``check`` for :func:`download`: None when the file's ``algo`` digest is ``expected``."""
    def check(path: Path) -> str | None:
        got = file_digest(path, algo)
        return None if got == expected else f"{algo} {got}, expected {expected}"
    return check


def download(url: str, dest: Path, *, label: str, size: int | None = None,
             check: Callable[[Path], str | None] = lambda p: None) -> Path:
    """``url`` into ``dest``, resumable, the one download path of ``sinsim data fetch``: bytes
    go to ``dest.part`` first (an earlier partial download is continued with an HTTP range
    request; a server that ignores the range starts it again), then the complete file is checked
    (``check(part)``: a message when it is wrong, else None) before it is renamed into place. A
    wrong file is removed. A progress bar on a terminal, a line per 25 % in logs."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.is_file() else 0
    req = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        resp = urllib.request.urlopen(req, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as e:
        if e.code != 416:  # 416: the part is already whole
            raise
        resp = None
    if resp is not None:
        with resp:
            if have and resp.status != 206:  # the server ignored the range: start again
                have = 0
            length = int(resp.headers.get("Content-Length") or 0)
            total = (length + have) if length else size
            with open(part, "ab" if have else "wb") as out, _Progress(total, have, label) as bar:
                cut = False
                try:
                    while chunk := resp.read(CHUNK):
                        out.write(chunk)
                        bar(len(chunk))
                except (OSError, http.client.HTTPException):  # what came is kept
                    cut = True
            got = part.stat().st_size
            if cut or (length and got < length + have):  # keep the part: the next call resumes
                of = f" of {length + have:,}" if length else ""
                raise FetchError(f"{url}: the connection closed after {got:,}{of} bytes (kept "
                                 f"in {part}; fetch again to resume)")
    why = check(part)
    if why:
        part.unlink(missing_ok=True)
        raise FetchError(f"{url}: {why} (the download was removed; fetch again)")
    os.replace(part, dest)
    return dest


class _Progress:
    """tqdm on a terminal (when installed); otherwise one stderr line at each quarter, so logs
    stay readable."""

    def __init__(self, total: int | None, done: int, label: str):
        self.total, self.done, self.label, self.bar, self.said = total, done, label, None, 0
        if total:
            self.said = done * 4 // total
        if sys.stderr.isatty():
            try:
                from tqdm import tqdm

                self.bar = tqdm(total=total, initial=done, desc=label, unit="B",
                                unit_scale=True, file=sys.stderr, leave=False)
            except ImportError:
                pass

    def __enter__(self):
        return self.update

    def update(self, n: int) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
        elif self.total and self.done * 4 // self.total > self.said:
            self.said = self.done * 4 // self.total
            _say(f"fetch: {self.label}: {self.done / 1e6:.1f} of {self.total / 1e6:.1f} MB")

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.close()
