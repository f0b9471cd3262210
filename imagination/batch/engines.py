"""Where items are rendered: in this process (the default, no Ray needed) or on Ray actors.

Both engines take items and yield `(item, outcome)` as items finish, in any order; the driver
(`imagination.batch.run`) writes the files and the manifest. Ray is the engine for more than one
worker: one actor per worker slot keeps its models loaded between items; an actor that dies (a killed
process, a lost node) is replaced and its item retried elsewhere, at most `retries` times.
"""

from __future__ import annotations

from typing import Iterator

from imagination.batch.jobs import Item
from imagination.batch.render import render, set_threads


class InProcess:
    """Items one after another in this process."""

    name = "in-process"

    def __init__(self, threads: int | None = None, device: str = "auto"):
        self.threads, self.device = threads, device

    def run(self, items: list[Item]) -> Iterator[tuple[Item, dict]]:
        set_threads(self.threads)
        for item in items:
            yield item, render(item, self.device)

    def close(self) -> None:
        pass


class RayEngine:
    """Items spread over `workers` Ray actors (a local Ray when `address` is None).

    On GPU nodes each actor takes one GPU (`num_gpus=1`); otherwise `threads` CPUs. Results come back
    as bytes, so the cluster needs no shared filesystem; the checkpoints must be on every node at the
    same path (or `IMAGINATION_CHECKPOINTS` set there).
    """

    name = "ray"

    def __init__(self, workers: int = 2, threads: int = 1, address: str | None = None, device: str = "auto",
                 retries: int = 2):
        import os

        import ray

        self.ray, self.workers, self.threads, self.retries = ray, workers, threads, retries
        env = {k: os.environ[k] for k in ("IMAGINATION_CHECKPOINTS", "HF_HUB_OFFLINE") if k in os.environ}
        if not ray.is_initialized():
            options = dict(include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": env})
            if address:
                ray.init(address=address, **options)
            else:
                ray.init(num_cpus=workers * threads, **options)
        gpus = ray.cluster_resources().get("GPU", 0) if device in ("auto", "cuda") else 0
        self.device = "cuda" if gpus else "cpu"
        resources = dict(num_gpus=1, num_cpus=threads) if gpus else dict(num_cpus=threads)
        self.actor_class = ray.remote(max_restarts=0, **resources)(_Worker)
        self.actors = [self._new_actor() for _ in range(workers)]

    def _new_actor(self):
        return self.actor_class.remote(self.threads, self.device)

    def run(self, items: list[Item]) -> Iterator[tuple[Item, dict]]:
        ray = self.ray
        pending = list(reversed(items))
        attempts: dict[str, int] = {}
        running: dict = {}  # object ref -> (actor index, item)
        idle = list(range(len(self.actors)))
        while pending or running:
            while pending and idle:
                index, item = idle.pop(), pending.pop()
                running[self.actors[index].render.remote(item)] = (index, item)
            ready, _ = ray.wait(list(running), num_returns=1)
            index, item = running.pop(ready[0])
            try:
                outcome = ray.get(ready[0])
            except ray.exceptions.RayActorError:  # the worker process died: replace it, retry the item
                self.actors[index] = self._new_actor()
                attempts[item.key] = attempts.get(item.key, 0) + 1
                if attempts[item.key] <= self.retries:
                    pending.append(item)
                    idle.append(index)
                    continue
                outcome = {"status": "failed", "error": f"its worker died {attempts[item.key]} times"}
            except ray.exceptions.RayTaskError as error:  # a bug, not a user's mistake: record, go on
                outcome = {"status": "failed", "error": str(error.cause or error).splitlines()[0]}
            idle.append(index)
            outcome.setdefault("attempts", attempts.get(item.key, 0) + 1)
            yield item, outcome

    def pids(self) -> list[int]:
        return self.ray.get([actor.pid.remote() for actor in self.actors])

    def close(self) -> None:
        for actor in self.actors:
            self.ray.kill(actor)


class _Worker:
    """A Ray actor: models load on its first item and stay loaded (the registry's cache)."""

    def __init__(self, threads: int, device: str):
        set_threads(threads)
        self.device = device

    def render(self, item: Item) -> dict:
        return render(item, self.device)

    def pid(self) -> int:
        import os

        return os.getpid()
