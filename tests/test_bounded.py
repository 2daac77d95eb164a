"""hardneg.bounded: a warm-up queued by prestart runs while the caller goes on, under its own deadline."""

from __future__ import annotations

import time

from hardneg import bounded
from hardneg.bounded import TIMEOUT, BoundedWorker


def test_a_call_after_a_prestarted_warm_up_gets_its_whole_timeout():
    worker = BoundedWorker()
    try:
        worker.prestart(time.sleep, 1.0)  # an import that takes 1 s
        t0 = time.perf_counter()
        assert worker.call(abs, -3, timeout=0.5) == 3  # 0.5 s is this call's, not the warm-up's
        assert time.perf_counter() - t0 >= 0.9
        assert worker.call(abs, -4, timeout=0.5) == 4
    finally:
        worker.close()


def test_a_warm_up_that_hangs_restarts_the_worker(monkeypatch):
    monkeypatch.setattr(bounded, "PRESTART_TIMEOUT", 0.3)
    worker = BoundedWorker()
    try:
        worker.prestart(time.sleep, 30)
        pid = worker._proc.pid
        assert worker.call(abs, -5, timeout=5.0) == 5
        assert worker._proc.pid != pid
        assert worker.call(time.sleep, 2, timeout=0.2) is TIMEOUT  # a call's own overrun is still a timeout
    finally:
        worker.close()


def test_a_warm_up_that_kills_the_worker_costs_the_call_nothing():
    import os

    worker = BoundedWorker()
    try:
        # alive when the call starts (still sleeping), dead while the call waits on its warm-ups
        worker.prestart(time.sleep, 0.5)
        worker.prestart(os._exit, 3)
        pid = worker._proc.pid
        assert worker.call(abs, -6, timeout=5.0) == 6
        assert worker._proc.pid != pid
    finally:
        worker.close()


def test_a_warm_up_is_queued_once_per_worker_process():
    worker = BoundedWorker()
    try:
        for _ in range(5):  # five MathVerifiers built in one process ask for the same imports
            worker.prestart(abs, -1)
        assert worker._pending == 1
        assert worker.call(abs, -2, timeout=5.0) == 2
        worker.prestart(abs, -1)
        assert worker._pending == 0  # the running worker has it already
        worker._stop()
        worker.prestart(abs, -1)  # a new worker process needs it again
        assert worker._pending == 1
    finally:
        worker.close()
