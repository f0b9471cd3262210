"""Batch jobs: many prompts, poems and seeds from a job file, in-process or on a Ray cluster, resumably.

    items = read_job("job.yaml")              # every item expanded and checked before anything runs
    records = run_job(items, "out/")          # in this process; engine=RayEngine(workers=4) for Ray

`jobs` reads and checks job files, `render` makes one item's files as bytes (where a worker runs),
`engines` runs items in-process or on Ray actors, `run` is the driver (manifest, resume, files) and
`index` writes the static gallery. Importing this package does not import Ray.
"""

from imagination.batch.jobs import Item, read_job
from imagination.batch.run import read_manifest, run_job

__all__ = ["Item", "read_job", "read_manifest", "run_job"]
