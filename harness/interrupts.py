"""Ctrl-C during a run: a clean stop on the first, a prompt one on the second.

`asyncio.run` handles SIGINT by cancelling the main task on the first signal and raising
KeyboardInterrupt from the signal handler on the second — wherever the main thread happens to
be, including inside asyncio's own task cancellation. A second Ctrl-C a few milliseconds after
the first then lands in the middle of the task groups winding down: the run printed a
traceback, or hung in `_cancel_all_tasks` waiting for a task that could no longer finish,
holding the run directory's lock.

Here the signal handler never raises inside the event loop. Every SIGINT while the run's
main task is alive asks the loop (thread-safely) to cancel that task: the first starts a
clean stop, a second one cancels again, which cuts short whatever clean-up the first is
awaiting (closing a client, stopping a server) instead of waiting for it. Once the loop is
done, KeyboardInterrupt is raised in the ordinary way. Nothing is lost either way: every
finished call was written whole when it returned (`harness.run_store`).

No signal reaches a thread other than the main one. A run made in a worker thread (the Python
API runs one there when the caller's own event loop is running, as in a notebook) is
interrupted through a `WorkerInterrupt` instead: the thread that sees the Ctrl-C calls its
`interrupt()`, and the run stops exactly as it does on SIGINT.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any, TypeVar

T = TypeVar("T")


class _Target:
    """The loop and task that a SIGINT cancels, once the run has started them."""

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.task: asyncio.Task[Any] | None = None
        self.interrupts = 0

    def interrupt(self) -> None:
        """A Ctrl-C: counted (so a run that has not started yet never starts), and the live
        run, if any, cancelled."""
        self.interrupts += 1
        # Not yet running, or already finished: nothing inside asyncio to protect; the
        # interrupt is raised after `asyncio.run` returns (`_run`).
        self.cancel()

    def cancel(self) -> bool:
        """Ask the loop to cancel the run; False when there is no live run to cancel."""
        loop, task = self.loop, self.task
        if loop is None or task is None or task.done() or loop.is_closed():
            return False
        try:
            loop.call_soon_threadsafe(task.cancel)
        except RuntimeError:  # the loop closed in between
            return False
        return True


_worker = threading.local()
"""The `_Target` bound to this worker thread by `WorkerInterrupt.bound`, if any."""


class WorkerInterrupt:
    """Ctrl-C for one run made in a worker thread: another thread calls `interrupt()`.

    The worker makes the run inside `bound()`; each `interrupt()` then does what a SIGINT does
    to a run in the main thread (the first cancels it cleanly, a second cuts the clean-up
    short) and KeyboardInterrupt comes out of the run in the worker. An interrupt before the
    run's loop started keeps it from starting.
    """

    def __init__(self) -> None:
        self._target = _Target()

    def interrupt(self) -> None:
        """Stop the run; safe from any thread."""
        self._target.interrupt()

    @contextmanager
    def bound(self) -> Iterator[None]:
        """In the worker thread: `run_interruptibly` calls inside obey `interrupt()`."""
        _worker.target = self._target
        try:
            yield
        finally:
            del _worker.target


def run_interruptibly(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """`asyncio.run(main())`, with the SIGINT handling above; KeyboardInterrupt when a SIGINT
    stopped it. Outside the main thread (no signals there) it obeys the `WorkerInterrupt`
    bound to the thread, and is plain `asyncio.run` without one."""
    if threading.current_thread() is not threading.main_thread():
        bound: _Target | None = getattr(_worker, "target", None)
        return asyncio.run(main()) if bound is None else _run(main, bound)
    target = _Target()

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        target.interrupt()

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        return _run(main, target)
    finally:
        signal.signal(signal.SIGINT, previous)


def _run(main: Callable[[], Coroutine[Any, Any, T]], target: _Target) -> T:
    """`asyncio.run(main())` as `target`'s run: KeyboardInterrupt if it was interrupted."""

    async def run_main() -> T:
        target.loop = asyncio.get_running_loop()
        target.task = asyncio.current_task()
        if target.interrupts:  # an interrupt arrived before the loop ran
            raise asyncio.CancelledError
        return await main()

    try:
        result = asyncio.run(run_main())
    except asyncio.CancelledError:
        if target.interrupts:
            raise KeyboardInterrupt from None
        raise
    except BaseException:
        if target.interrupts:
            # The cancellation surfaced as another error (a task group's): the user's
            # interrupt is what happened.
            raise KeyboardInterrupt from None
        raise
    if target.interrupts:
        raise KeyboardInterrupt  # the run finished as the interrupt came in
    return result
