"""A workload for the multi-node tests that makes trials run at once, whatever the machine's load."""

from __future__ import annotations

import time

from tests.ray.workloads import paced


def gathered(config, reporter):
    """:func:`~tests.ray.workloads.paced`, after the trial has appended a line to ``args['gather']`` and seen
    ``args['together']`` lines there (or ``args['gather_seconds']``, default 180, passed).

    Why: Tune starts one trial at a time and reuses the actor of a finished one (``reuse_actors=True``). On
    2 cores at a load average of 13, a new trial actor on a ``ray start`` node took more than 12 s to start
    (importing Ray and the trainable), longer than a 12 s trial, so one reused actor ran all six trials of
    a study one after the other on one node. Held here until ``together`` trials have started, each trial
    keeps its 1-CPU node busy, so the next one needs a new actor on another node."""
    args = config["args"]
    with open(args["gather"], "a") as f:
        f.write(f"{config['params'].get('lr')}\n")
    deadline = time.time() + float(args.get("gather_seconds", 180))
    while time.time() < deadline:
        with open(args["gather"]) as f:
            if sum(1 for line in f if line.strip()) >= int(args["together"]):
                break
        time.sleep(0.2)
    paced(config, reporter)
