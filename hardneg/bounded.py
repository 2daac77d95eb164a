"""Run untrusted symbolic work (SymPy, LaTeX parsing) under a hard time and memory limit.

A `signal.alarm` cannot interrupt a C-level big-integer power such as `10**10**10**10`,
and it only works in the main thread. So the work runs in one persistent worker
process: a call that overruns its deadline kills the worker (a fresh one is started
on the next call) and returns `TIMEOUT`. The worker caps its own address space, so a
memory blow-up ends the worker, not the caller. Batch many small checks into one call:
a round trip costs ~0.1 ms, a SymPy import ~1 s once per worker.

    from hardneg.bounded import call_bounded, TIMEOUT
    result = call_bounded(my_module_level_function, arg, timeout=2.0)
    if result is TIMEOUT: ...

`func` must be a module-level function (it is pickled by reference).

`prestart_bounded(warm)` starts the worker and has it run `warm` (the imports) while the caller
goes on, so a process that will need SymPy pays for its import in parallel with loading models
and data, not in front of its first check.
"""

from __future__ import annotations

import atexit
import multiprocessing as mp
import multiprocessing.util  # noqa: F401 - registers its exit hook now, so ours (below) runs before it
import os
import signal
import threading
from typing import Any, Callable

TIMEOUT = type("Timeout", (), {"__repr__": lambda self: "TIMEOUT", "__bool__": lambda self: False})()
WORKER_MEMORY_BYTES = 2 * 1024**3
PRESTART_TIMEOUT = 120.0  # a warm-up (imports) on a busy machine; one that overruns this restarts the worker


class BoundedCallError(RuntimeError):
    """The bounded function raised; the message carries the worker's exception."""


def _worker_main(conn, memory_bytes: int) -> None:
    # An ignored SIGTERM is inherited through exec (nohup-style launchers, some CI runners): the
    # parent's exit would then wait forever on a worker that `terminate()` cannot end.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    except (ImportError, ValueError, OSError):
        pass
    while True:
        try:
            func, args, kwargs = conn.recv()
        except (EOFError, OSError):
            return
        try:
            conn.send((True, func(*args, **kwargs)))
        except MemoryError:
            conn.send((False, "MemoryError: worker memory limit reached"))
        except BaseException as exc:  # noqa: BLE001 - report anything to the caller
            conn.send((False, f"{type(exc).__name__}: {exc}"))


class BoundedWorker:
    """One worker process; thread-safe, restarted after a timeout or crash."""

    def __init__(self, memory_bytes: int = WORKER_MEMORY_BYTES):
        self.memory_bytes = memory_bytes
        self._lock = threading.Lock()
        self._proc = None
        self._conn = None
        self._pid = None
        self._pending = 0  # warm-ups sent by prestart whose results have not been read yet
        self._warmed: set = set()  # (func, repr(args)) of the warm-ups this worker process was given: each runs once

    def _start(self) -> None:
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_worker_main, args=(child, self.memory_bytes), daemon=True)
        proc.start()
        child.close()
        self._proc, self._conn, self._pid, self._pending = proc, parent, os.getpid(), 0
        self._warmed = set()

    def _stop(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.join(timeout=5)
            self._conn.close()
        self._proc = self._conn = None
        self._pending = 0
        self._warmed = set()

    def _ensure(self) -> None:
        # A forked child inherits the handle of its parent's worker; never share it.
        if self._proc is None or self._pid != os.getpid() or not self._proc.is_alive():
            self._proc = None
            self._start()

    def prestart(self, func: Callable[..., Any], *args: Any) -> None:
        """Start the worker if needed and queue `func(*args)` (a warm-up) without waiting for it. A warm-up
        the running worker was already given is not queued again (every `MathVerifier` asks for the same
        imports; a long-lived process builds many)."""
        with self._lock:
            self._ensure()
            key = (func, repr(args))  # repr: arguments need not be hashable
            if key in self._warmed:
                return
            try:
                self._conn.send((func, args, {}))
                self._pending += 1
                self._warmed.add(key)
            except (OSError, BrokenPipeError):
                self._stop()

    def call(self, func: Callable[..., Any], *args: Any, timeout: float = 2.0, **kwargs: Any) -> Any:
        with self._lock:
            self._ensure()
            try:
                # warm-ups first, under their own deadline: `timeout` is this call's alone
                while self._pending:
                    if not self._conn.poll(PRESTART_TIMEOUT):
                        raise OSError("warm-up overran")
                    self._conn.recv()
                    self._pending -= 1
            except (EOFError, OSError):
                self._stop()  # a warm-up that hung or killed the worker: this call gets a fresh one
                self._start()
            try:
                self._conn.send((func, args, kwargs))
                if not self._conn.poll(timeout):
                    self._stop()
                    return TIMEOUT
                ok, value = self._conn.recv()
            except (EOFError, OSError, BrokenPipeError):
                self._stop()  # the worker died (memory limit, segfault): treat as overrun
                return TIMEOUT
        if not ok:
            raise BoundedCallError(value)
        return value

    def close(self) -> None:
        with self._lock:
            self._stop()


_DEFAULT = BoundedWorker()
# Kill the worker before multiprocessing's own exit hook joins it (atexit runs last-registered first).
atexit.register(_DEFAULT.close)


def call_bounded(func: Callable[..., Any], *args: Any, timeout: float = 2.0, **kwargs: Any) -> Any:
    """Run `func(*args, **kwargs)` in the shared worker; `TIMEOUT` if it overruns."""
    return _DEFAULT.call(func, *args, timeout=timeout, **kwargs)


def prestart_bounded(func: Callable[..., Any], *args: Any) -> None:
    """Start the shared worker and let it run `func(*args)` (imports) while the caller goes on."""
    _DEFAULT.prestart(func, *args)
