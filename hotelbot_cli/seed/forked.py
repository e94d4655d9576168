"""Run the seed's Python generator in a forked process: one chunk ahead, no shared GIL.

In the seeding process the generator thread and the loop that hands each chunk's bytes to
the two server processes took turns on one interpreter lock: while the thread made a
chunk, neither server got its next bytes. A forked child has its own interpreter. It
inherits everything already imported (nothing to start up) and the options, and sends each
item back pickled through a pipe; an item is mostly ``bytes`` (see ``seed.encoded``), which
pickle copies as they are. The pipe bounds it: the child makes the next item while this one
is loaded, then waits until it is read.

The child never touches the parent's connections (it only formats rows with a cursor's
adapters) and ends with ``os._exit``: no finalizer runs there, nothing is sent on an
inherited socket. It ignores SIGINT: an interrupted seed kills it when the load stops.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from hotelbot_cli.errors import HotelbotError

#: The last item: the child finished without an error.
_DONE = "done"
_ITEM = "item"
_ERROR = "error"
#: Bytes the pipe may hold (Linux rounds it to pages; the default is 64 KiB).
PIPE_SIZE = 1 << 20


def available() -> bool:
    """Whether this platform can fork (not Windows)."""
    return hasattr(os, "fork")


class Forked:
    """Iterate over what ``produce()`` yields, produced in a forked child.

    ``overlap()`` exists for the consumer's sake (see ``chunks.Prefetch``): a child needs no
    permission to run while the consumer does.
    """

    def __init__(self, produce: Callable[[], Iterable[Any]]) -> None:
        self._produce = produce
        #: The child's pid while it runs (None before, and where nothing could be forked).
        self.pid: int | None = None

    def overlap(self) -> None:
        """Nothing to do: the child runs on its own."""

    def __iter__(self) -> Iterator[Any]:
        read_fd, write_fd = os.pipe()
        _widen(write_fd)
        try:
            pid = os.fork()
        except OSError:  # no process to spare (EAGAIN, ENOMEM): make the items here instead
            os.close(read_fd)
            os.close(write_fd)
            yield from self._produce()
            return
        if pid == 0:  # pragma: no cover - the child, where coverage does not follow
            os.close(read_fd)
            _child(self._produce, write_fd)
        self.pid = pid
        os.close(write_fd)
        finished = False
        try:
            with os.fdopen(read_fd, "rb") as pipe:
                yield from _items(pipe)
            finished = True
        finally:
            _reap(pid, kill=not finished)
            self.pid = None


def _items(pipe: Any) -> Iterator[Any]:
    while True:
        try:
            kind, value = pickle.load(pipe)  # noqa: S301 - our own child, through our pipe
        except (EOFError, pickle.UnpicklingError):  # nothing more, or cut off mid-item
            raise HotelbotError(
                "the seed's generator process ended without a word (killed, out of memory?)",
                "nothing of this run was committed: run it again",
            ) from None
        if kind == _DONE:
            return
        if kind == _ERROR:
            raise value
        yield value


def _child(produce: Callable[[], Iterable[Any]], write_fd: int) -> None:  # pragma: no cover
    """Produce into ``write_fd``, then leave without running anything of the parent's."""
    status = 0
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        with os.fdopen(write_fd, "wb") as pipe:
            try:
                for item in produce():
                    pickle.dump((_ITEM, item), pipe, protocol=pickle.HIGHEST_PROTOCOL)
                    pipe.flush()  # all of it, now: not when the next item fills the buffer
                pickle.dump((_DONE, None), pipe)
            except BrokenPipeError:
                status = 1  # the parent stopped reading: nothing left to tell it
            except Exception as exc:  # handed to the parent, raised there
                pickle.dump((_ERROR, _picklable(exc)), pipe)
    except BaseException:
        status = 1
    finally:
        os._exit(status)


def _picklable(exc: Exception) -> Exception:  # pragma: no cover - runs in the child
    try:
        pickle.loads(pickle.dumps(exc))  # noqa: S301 - its own bytes
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")
    return exc


def _widen(fd: int) -> None:
    """A larger pipe: a chunk's bytes cross in fewer turns (Linux only; harmless elsewhere)."""
    import fcntl

    set_size = getattr(fcntl, "F_SETPIPE_SZ", None)
    if set_size is not None:  # fails above /proc/sys/fs/pipe-max-size, unprivileged
        with contextlib.suppress(OSError):
            fcntl.fcntl(fd, set_size, PIPE_SIZE)


def _reap(pid: int, *, kill: bool) -> None:
    """The child is gone when this returns (``kill``: not waiting for it to finish)."""
    try:
        if kill:
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ChildProcessError, ProcessLookupError):  # pragma: no cover - already reaped
        pass
