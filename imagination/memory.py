"""Will a run fit in memory? An estimate of its peak before the first step, and a refusal if not.

A step's peak is dominated by what autograd keeps for the backward pass (the VQGAN decoder's
activations grow with the image area, its attention with the area squared; the encoders' with the
number of cutouts). Rather than a formula per model, the step's forward pass is traced once on
*fake* tensors (`FakeTensorMode`: shapes only, no memory, well under a second) and the bytes of every
tensor saved for backward are added up; that is exact for any model, canvas and size. The peak
resident memory a step adds then measured 1.1-2.0x those bytes on the 2-core CPU (demo models,
sizes 128-512, batch 1-4, VQGAN/pixel/pyramid canvases, CLIP and BriVL): `PEAK_PER_SAVED_BYTE` and
`FIXED_BYTES` fit those runs within -11%...+18%, and tests/test_memory.py holds the estimate to ±30%
of a measured peak. The check refuses a run that needs more than is free (`MemAvailable` on Linux,
`cudaMemGetInfo` on a GPU); where free memory cannot be read, nothing is refused.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from imagination.errors import UserError

PEAK_PER_SAVED_BYTE = 1.15  # measured peak RSS added by a step / bytes saved for backward (see above)
FIXED_BYTES = 64 * 2**20  # first-step allocations that do not scale: kernel workspaces, thread stacks
HEADROOM = 0.9  # leave a tenth of what is free to the rest of the machine

log = logging.getLogger(__name__)


def saved_bytes(canvas, objective, cutouts) -> int | None:
    """Bytes autograd saves in one step's forward pass, traced on fake tensors; None if tracing fails
    (an operator fake tensors cannot run: then nothing is estimated, nothing refused)."""
    from torch._subclasses.fake_tensor import FakeTensor, FakeTensorMode

    storages: dict[int, int] = {}

    def pack(tensor):
        if isinstance(tensor, FakeTensor):  # real ones (the weights) are already in memory
            storage = tensor.untyped_storage()
            storages[id(storage)] = storage.nbytes()
        return tensor

    generator_state = cutouts.generator.get_state() if cutouts.generator is not None else None
    try:
        with FakeTensorMode(allow_non_fake_inputs=True), torch.enable_grad(), \
                torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            images = canvas()
            objective(images, cutouts(images))
    except Exception as error:  # noqa: BLE001 - an estimate must never stop a run
        log.debug("memory estimate skipped: %s", error)
        return None
    finally:
        if generator_state is not None:  # the estimate must not change which cutouts the run draws
            cutouts.generator.set_state(generator_state)
    return sum(storages.values())


def estimated_peak_bytes(canvas, objective, cutouts) -> int | None:
    """Memory one optimisation step adds on top of the loaded models (None: could not estimate)."""
    saved = saved_bytes(canvas, objective, cutouts)
    if saved is None:
        return None
    state = sum(p.numel() * p.element_size() for p in canvas.parameters() if p.requires_grad)
    return int(PEAK_PER_SAVED_BYTE * saved + FIXED_BYTES + 3 * state)  # + the gradient and Adam's two moments


def free_bytes(device: torch.device) -> int | None:
    """Memory free for this run on `device`; None where it cannot be read."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    meminfo = Path("/proc/meminfo")
    if device.type == "cpu" and meminfo.is_file():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return None


def check_fits(canvas, objective, cutouts, device: torch.device, *, size: int, cutn: int, batch: int) -> int | None:
    """Refuse (UserError) a run whose estimated peak exceeds what is free; return the estimate."""
    need = estimated_peak_bytes(canvas, objective, cutouts)
    free = free_bytes(device)
    if need is not None and free is not None and need > HEADROOM * free:
        where = "GPU memory" if device.type == "cuda" else "memory"
        raise UserError(f"this run needs about {need / 2**30:.1f} GB of {where}, {free / 2**30:.1f} GB is free: "
                        f"lower the size ({size}), the cutouts ({cutn}) or the number of images ({batch})")
    return need
