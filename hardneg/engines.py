"""Shard engines: run one worker function over a stream of shards, in-process or on Ray.

Why two: the embedded default and tests verify a few hundred candidates in the Dagster
step's own process (`local`); a 600K pool wants every core of a box, or a cluster (`ray`).
Both take the same two things, so the code that prepares shards and stores results is one:

- `make_worker`: a picklable zero-argument callable that builds the worker (loads models).
  `local` calls it once; `ray` calls it once per actor, so each actor holds its own encoder.
- `tasks`: an iterator of shard tasks. It is consumed lazily (Ray keeps at most
  `workers × inflight_per_worker` shards in flight), so a driver never holds the whole pool.

Results come back as they finish (Ray: completion order, not task order); the caller writes
each one as it arrives, which is what makes a long run resumable.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Optional

__all__ = ["EngineConfig", "LocalEngine", "RayEngine", "build_engine", "in_order", "ENGINES"]

ENGINES = ("local", "ray")


@dataclass
class EngineConfig:
    """Where shards run. Changing these never changes a result, only where and how fast it is computed."""

    engine: str = "local"
    """`local`: in the calling process (the default; nothing to install or start). `ray`: a pool of
    Ray actors, one model copy each, on a local Ray started for the run or on an existing cluster."""
    workers: int = 2
    """Ray actors (ignored by `local`)."""
    ray_address: Optional[str] = None
    """None: start a local Ray with `workers × cpus_per_worker` CPUs and stop it afterwards.
    `auto` or `ray://head:10001`: join an existing cluster (it is left running)."""
    cpus_per_worker: float = 1.0
    """CPUs each actor reserves (and torch threads it uses, rounded, when `torch_threads` is None)."""
    gpus_per_worker: float = 0.0
    """GPUs each actor reserves (e.g. 0.25: four encoder actors share one GPU)."""
    inflight_per_worker: int = 2
    """Shards queued per actor, so an actor never waits for the driver between shards."""
    torch_threads: Optional[int] = None
    """Torch intra-op threads per worker; None: `cpus_per_worker` for Ray actors, torch's default locally."""

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ValueError(f"EngineConfig.engine must be one of {ENGINES}, got {self.engine!r}")
        if self.workers < 1 or self.inflight_per_worker < 1:
            raise ValueError("EngineConfig.workers and inflight_per_worker must be >= 1")
        if not self.cpus_per_worker > 0 or self.gpus_per_worker < 0:
            raise ValueError("EngineConfig.cpus_per_worker must be > 0 and gpus_per_worker >= 0")
        if self.torch_threads is not None and self.torch_threads < 1:
            raise ValueError(f"EngineConfig.torch_threads must be >= 1 or None, got {self.torch_threads}")

    def describe(self) -> str:
        if self.engine == "local":
            return "local (in-process)"
        where = self.ray_address or "local Ray"
        return f"ray ({self.workers} workers × {self.cpus_per_worker:g} CPU, {self.gpus_per_worker:g} GPU; {where})"


def _set_torch_threads(n: Optional[int]) -> None:
    if n:
        import torch

        torch.set_num_threads(int(n))


class LocalEngine:
    """Runs every shard in this process, in order."""

    def __init__(self, config: EngineConfig):
        self.config = config

    def map(self, make_worker: Callable[[], Callable[[Any], Any]], tasks: Iterable[Any]) -> Iterator[Any]:
        _set_torch_threads(self.config.torch_threads)
        worker = make_worker()
        for task in tasks:
            yield worker(task)


class _Actor:
    """The Ray actor: builds its worker once, then runs the shards it is sent."""

    def __init__(self, make_worker: Callable[[], Callable[[Any], Any]], torch_threads: Optional[int]):
        _set_torch_threads(torch_threads)
        self.worker = make_worker()

    def run(self, task: Any) -> Any:
        return self.worker(task)

    def pid(self) -> int:
        return os.getpid()


class RayEngine:
    """A pool of Ray actors fed shard by shard; results yielded as they complete."""

    def __init__(self, config: EngineConfig):
        self.config = config

    def _init(self) -> bool:
        """Start or join Ray; True when this call started a local instance (and must stop it)."""
        import ray

        if ray.is_initialized():
            return False
        cfg = self.config
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no network at run time
        if cfg.ray_address:
            ray.init(address=cfg.ray_address, log_to_driver=True)
            return False
        ray.init(
            num_cpus=max(1, int(round(cfg.workers * cfg.cpus_per_worker))),
            num_gpus=int(-(-cfg.workers * cfg.gpus_per_worker // 1)) if cfg.gpus_per_worker else 0,
            include_dashboard=False,
            log_to_driver=True,
        )
        return True

    def map(self, make_worker: Callable[[], Callable[[Any], Any]], tasks: Iterable[Any]) -> Iterator[Any]:
        import ray

        cfg = self.config
        started = self._init()
        threads = cfg.torch_threads or max(1, int(round(cfg.cpus_per_worker)))
        remote = ray.remote(num_cpus=cfg.cpus_per_worker, num_gpus=cfg.gpus_per_worker)(_Actor)
        actors = [remote.remote(make_worker, threads) for _ in range(cfg.workers)]
        pending: dict[Any, Any] = {}
        stream = iter(tasks)

        def submit(actor) -> None:
            task = next(stream, None)
            if task is not None:
                pending[actor.run.remote(task)] = actor

        try:
            for _ in range(cfg.inflight_per_worker):
                for actor in actors:
                    submit(actor)
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                actor = pending.pop(done[0])
                result = ray.get(done[0])  # a worker's exception is re-raised here, naming the shard's task
                submit(actor)
                yield result
        finally:
            for actor in actors:
                ray.kill(actor)
            if started:
                ray.shutdown()


def build_engine(config: EngineConfig):
    return RayEngine(config) if config.engine == "ray" else LocalEngine(config)


def in_order(results: Iterable[Any], start: int = 0) -> Iterator[Any]:
    """Results that carry an `index` (shard number), back in index order from `start`: Ray yields
    them as they complete; a consumer writing resumable parts needs them as a prefix."""
    waiting, following = {}, start
    for result in results:
        waiting[result.index] = result
        while following in waiting:
            yield waiting.pop(following)
            following += 1
