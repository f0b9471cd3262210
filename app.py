"""Start the imagination studio: `python app.py` serves it on http://127.0.0.1:7860.

It uses the best models present under checkpoints/ (the small demo models otherwise); see the
Models tab for what is missing and where it goes.
"""

from __future__ import annotations

import argparse
import os
import sys
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


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from imagination.errors import UserError
    from studio import build_app, launch

    if not args.no_preload:
        print("loading models…")
        try:
            preload(args.device)
        except UserError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    demo = build_app(args.outputs, device=args.device, concurrency=args.concurrency)
    launch(demo, args.outputs, host=args.host, port=args.port, queue_size=args.queue_size,
           concurrency=args.concurrency)
    return 0


if __name__ == "__main__":
    sys.exit(main())
