"""A/B tests of routing strategies on live traffic: arms, and which one a request belongs to.

`routing.experiments` names two or more arms, each a routing configuration (the
`complexity_detection` keys it changes: estimator, thresholds, features, model_path,
target, value_lambda), with optional weights. A request's arm is a deterministic hash
of the chosen key, so the same key always lands in the same arm, across processes and
restarts:

- `request`: the request id (every request on its own);
- `task`: the ARC task id, else `metadata.task_id`, else the prompt itself (every
  sample and every generation of one task sees the same strategy);
- `run`: `metadata.run_id` (a whole GA run on one strategy).

The arm is recorded on the request's decision, so telemetry, `orchestrator stats --by
arm` and the report compare arms by requests, cost and feedback score.
"""

from __future__ import annotations

import zlib

from actors.messages import Request
from actors.policy.settings import Experiments

SPLITS = ("request", "task", "run")


def arm_for(experiments: Experiments, request: Request) -> int:
    """The index of the request's arm: its key's CRC-32 over the arms' weights."""
    total = sum(arm.weight for arm in experiments.arms)
    point = zlib.crc32(split_key(experiments.split_by, request).encode("utf-8", "surrogatepass")) % total
    for index, arm in enumerate(experiments.arms):
        if point < arm.weight:
            return index
        point -= arm.weight
    raise AssertionError("the weights cover every point")


def split_key(split_by: str, request: Request) -> str:
    if split_by == "request":
        return request.request_id
    if split_by == "run":
        return request.metadata.get("run_id", "")
    if request.task is not None:
        return request.task.task_id
    return request.metadata.get("task_id") or "\n".join(m.content for m in request.messages)
