"""python -m bench.poem_split — why a poem batch does not pay on a CPU.

Times the step's two halves at batch 1 and batch 8 (demo models, bf16 autocast, median of 5). A
half whose per-image time does not fall with the batch leaves batching nothing to gain there, so
the two per-image gains bound what any batched loop can win. Figures in bench/RESULTS.md.
"""

import time

import torch

from imagination.models import registry


def median_seconds(fn, reps: int = 5) -> float:
    fn()  # warm-up
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def main() -> None:
    torch.manual_seed(0)
    clip, vqgan = registry.load("clip"), registry.load("vqgan")

    def decode(batch):
        z = torch.randn(batch, vqgan.embed_dim, 16, 16, requires_grad=True)  # 128 px at f=8
        return lambda: vqgan.decode(z).sum().backward()

    def encode_cutouts(batch):
        x = torch.rand(32 * batch, 3, clip.input_size, clip.input_size, requires_grad=True)
        return lambda: clip.encode_image(x).sum().backward()

    for name, make in (("VQGAN decode, forward + backward", decode),
                       ("CLIP image tower, 32 cutouts per image, forward + backward", encode_cutouts)):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            one, eight = median_seconds(make(1)), median_seconds(make(8))
        print(f"{name}: batch 1 {one * 1000:.1f} ms, batch 8 {eight * 1000:.1f} ms "
              f"({eight / 8 * 1000:.1f} ms/image); per-image gain {8 * one / eight:.2f}x")


if __name__ == "__main__":
    main()
