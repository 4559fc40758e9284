"""User workloads for the Ray tests, loaded by 'module:function' on Ray workers."""

from __future__ import annotations

import json
import math
import os
import time


def paced(config, reporter):
    """A smooth synthetic curve, ``(log10 lr + 2)^2 + 1/step``, reporting every ``report_every`` steps after
    ``args['pause']`` seconds per report; logs each start (with its size and ``CUDA_VISIBLE_DEVICES``) and
    report (with its pid) to ``args['log']``."""
    args = config["args"]
    log = args.get("log")

    def note(**kw):
        if log:
            with open(log, "a") as f:
                f.write(json.dumps({"pid": os.getpid(), "trial": config["params"].get("lr"), **kw}) + "\n")

    import ray  # a Ray worker: its node tells the multi-node tests where the trial ran

    node = ray.get_runtime_context().get_node_id() if ray.is_initialized() else None
    note(event="start", start=config["start_step"], resumed=config["checkpoint"] is not None, size=config["size"],
         cuda=os.environ.get("CUDA_VISIBLE_DEVICES"), node=node)
    for step in range(config["start_step"] + 1, config["steps"] + 1):
        if step % config["report_every"] and step != config["steps"]:
            continue
        time.sleep(float(args.get("pause", 0.0)))
        value = (math.log10(config["params"]["lr"]) + 2.0) ** 2 + 1.0 / step
        note(event="report", step=step, t=time.time())
        reporter(step, value, {"step": step})


def needs_missing_package(config, reporter):
    """A user workload whose own import fails on the worker, as one importing a package not installed there."""
    import my_project  # noqa: F401  (deliberately missing)


def crash_once_transformer(config, reporter):
    """The built-in muP transformer, whose worker process dies (``os._exit``) right after its report at
    step ``args['crash_at']``, once per ``args['flag']`` file; logs each start's step and the mixture it was
    given (``config['adapted']``) to ``args['log']``."""
    from workers.workloads.lm import mup_transformer

    args = config["args"]
    with open(args["log"], "a") as f:
        f.write(json.dumps({"start": config["start_step"], "adapted": config.get("adapted")}) + "\n")

    def crashing(step, value, checkpoint_state=None, *, domains=None):
        answer = reporter(step, value, checkpoint_state, domains=domains)
        if step == int(args["crash_at"]) and not os.path.exists(args["flag"]):
            open(args["flag"], "w").close()
            os._exit(1)
        return answer

    mup_transformer(config, crashing)
