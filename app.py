"""Start the imagination studio: `python app.py` serves it on http://127.0.0.1:7860.

It uses the best models present under checkpoints/ (the small demo models otherwise); see the
Models tab for what is missing and where it goes.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="The imagination studio (Gradio).")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind; 0.0.0.0 exposes the studio to the network (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    parser.add_argument("--outputs", default="outputs",
                        help="folder for finished images; the only folder the app serves (default outputs/)")
    parser.add_argument("--concurrency", type=int, default=1,
                        help="runs computed at the same time on the device (default 1)")
    parser.add_argument("--queue-size", type=int, default=16, help="most users waiting in the queue (default 16)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    parser.add_argument("--no-preload", action="store_true", help="load models on the first run, not at start")
    args = parser.parse_args(argv)
    if args.concurrency < 1 or args.queue_size < 1:
        parser.error("--concurrency and --queue-size must be at least 1")
    return args


def preload(device: str) -> None:
    """Load each family's model once, so the first run starts at once; missing ones are reported."""
    from imagination.errors import UserError
    from imagination.models import registry
    from imagination.pipeline import pick_device

    device = str(pick_device(device))
    for family in ("brivl", "clip", "vqgan"):
        start = time.perf_counter()
        try:
            name = registry.resolve(family).name
            registry.load(family, device)  # the same (name, device) the runs will ask for
            print(f"  {family}: {name} ({time.perf_counter() - start:.1f} s)")
        except UserError as error:
            print(f"  {family}: not available: {error}")


def preload_off_the_main_thread(device: str) -> None:
    """`preload` on a thread that ends when it is done, so the main thread never runs a parallel op.

    GNU OpenMP keeps a team of worker threads for every thread that has run a parallel op, for as
    long as that thread lives. With the main thread's team alive beside the team of the thread that
    steps a run, libgomp sees more threads than cores and stops spinning between parallel regions:
    every op then wakes its workers through the kernel. Measured with `make run`, /imagine at the
    defaults: 100 steps in 13.2-13.8 s with the models loaded on the main thread, 11.1-12.3 s like this
    (README, Speed). A thread that ends frees its team.
    """
    failure: list[BaseException] = []

    def load():
        try:
            preload(device)
        except BaseException as error:  # re-raised on the main thread, which reports it
            failure.append(error)

    loader = threading.Thread(target=load, name="preload")
    loader.start()
    loader.join()
    if failure:
        raise failure[0]


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from imagination.errors import UserError
    from studio import build_app, launch

    if not args.no_preload:
        print("loading models…")
        try:
            preload_off_the_main_thread(args.device)
        except UserError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    demo = build_app(args.outputs, device=args.device, concurrency=args.concurrency)
    launch(demo, args.outputs, host=args.host, port=args.port, queue_size=args.queue_size,
           concurrency=args.concurrency)
    return 0


if __name__ == "__main__":
    sys.exit(main())
