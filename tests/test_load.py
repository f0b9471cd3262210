"""The studio under load: more clients than its queue holds, two of them cancelling mid-run.

A studio with one worker and a waiting line of 4 gets 8 runs at once. Each client is served (its PNG
saved), told the queue is full, or, for the two that cancel, keeps the image its run reached; the app
answers afterwards and the outputs folder holds no half-written file.
"""

from __future__ import annotations

import concurrent.futures
import time

import httpx
import pytest
from gradio_client import Client
from gradio_client.utils import QueueError

from conftest import free_port
from imagination.io import read_metadata
from test_studio import imagine_args

CLIENTS, QUEUE, CANCELLED, STEPS = 8, 4, 2, 150


@pytest.fixture(scope="module")
def busy_studio(tiny_checkpoints, tmp_path_factory):
    from studio import build_app, launch

    outputs = tmp_path_factory.mktemp("load-outputs")
    demo = build_app(outputs, device="cpu")
    _, url, _ = launch(demo, outputs, port=free_port(), queue_size=QUEUE, prevent_thread_lock=True, quiet=True)
    yield url, outputs
    demo.close()


def started(job, timeout: float = 120) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any("step " in str(update[1]) for update in job.outputs()):
            return True
        time.sleep(0.02)
    return False


def submit(client: Client, index: int, steps: int = STEPS):
    return client.submit(**imagine_args(prompt=f"client {index} boat", steps=steps, size=32, cutn=2, seed=index,
                                        preview_every=10), api_name="/imagine")


def outcome(job) -> tuple[str, object]:
    """-> ('served', png path) | ('queue full', message)."""
    try:
        image, *_ = job.result(timeout=600)
        return "served", image
    except QueueError as error:
        return "queue full", str(error)


@pytest.mark.slow
def test_eight_clients_against_a_queue_of_four(busy_studio):
    """Clients 0 and 1 come first (0 runs, then 1 waits) and cancel once their own run is under way; the
    other six arrive together while client 0 runs, so the line of 4 cannot take them all."""
    url, outputs = busy_studio
    clients = [Client(url, verbose=False) for _ in range(CLIENTS)]
    first = submit(clients[0], 0, steps=1000)  # long runs: they are cancelled well before the end
    assert started(first)
    second = submit(clients[1], 1, steps=1000)
    with concurrent.futures.ThreadPoolExecutor(CLIENTS) as pool:
        others = [pool.submit(lambda i: outcome(submit(clients[i], i)), i) for i in range(CANCELLED, CLIENTS)]
        time.sleep(1.0)  # the six are in line or refused before client 0 frees the worker
        first.cancel()
        assert started(second, timeout=300)
        second.cancel()
        outcomes = [future.result() for future in others]
    for client in clients:
        client.close()
    kinds = [kind for kind, _ in outcomes]
    assert kinds.count("queue full") >= 2 and kinds.count("served") >= 3, outcomes  # 1 running + 4 waiting < 8
    for kind, value in outcomes:
        if kind == "served":
            meta = read_metadata(value)
            assert meta["steps_done"] == STEPS and not meta["stopped"]
        else:
            assert "Queue is full" in value

    def stopped_images():
        return [p for p in outputs.glob("*-stopped.png") if read_metadata(p).get("stopped")]

    deadline = time.monotonic() + 60  # a cancelled run saves its image on a worker thread
    while len(stopped_images()) < CANCELLED and time.monotonic() < deadline:
        time.sleep(0.1)
    stopped = stopped_images()
    assert len(stopped) == CANCELLED and all(0 < read_metadata(p)["steps_done"] < 1000 for p in stopped)
    assert sorted(read_metadata(p)["prompt"] for p in stopped) == [f"client {i} boat" for i in range(CANCELLED)]

    assert httpx.get(url).status_code == 200  # still serving, and still running
    client = Client(url, verbose=False)
    _, status, *_ = client.predict(**imagine_args(steps=2), api_name="/imagine")
    client.close()
    assert status.startswith("done · 2 steps")
    assert not [p for p in outputs.rglob("*") if p.name.endswith(".part")]  # nothing half-written
