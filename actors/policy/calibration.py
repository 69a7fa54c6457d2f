"""Thresholds that reproduce a target tier mix on a workload.

Given the scores of a workload and a mix (60,25,10,5: the share of requests each level
should get, in level order), the thresholds are the scores at the cumulative
quantiles (60%, 85%, 95%); the last level takes the rest. Ties in scores can make the
achieved mix differ from the target; the achieved mix is reported next to it.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs


@attrs.frozen
class Calibration:
    thresholds: tuple[tuple[str, float], ...]
    target: tuple[float, ...]
    achieved: tuple[float, ...]
    count: int


def calibrate(scores: Sequence[float], mix: Sequence[float], levels: Sequence[str]) -> Calibration:
    if len(mix) != len(levels):
        raise ValueError(f"the mix has {len(mix)} shares for {len(levels)} levels")
    if not scores:
        raise ValueError("no scores to calibrate on")
    total = sum(mix)
    shares = [m / total for m in mix]
    ordered = sorted(scores)
    bounds: list[float] = []
    cumulative = 0.0
    for share in shares[:-1]:
        cumulative += share
        index = min(len(ordered) - 1, max(0, round(cumulative * len(ordered)) - 1))
        bound = ordered[index]
        if bounds and bound <= bounds[-1]:
            bound = bounds[-1] + 1e-9
        bounds.append(bound)
    bounds.append(max(1.0, ordered[-1]))
    thresholds = tuple((level, round(bound, 9)) for level, bound in zip(levels, bounds))
    return Calibration(thresholds, tuple(shares), achieved_mix(scores, thresholds), len(scores))


def achieved_mix(scores: Sequence[float], thresholds: Sequence[tuple[str, float]]) -> tuple[float, ...]:
    counts = [0] * len(thresholds)
    for score in scores:
        for index, (_, bound) in enumerate(thresholds):
            if score <= bound or index == len(thresholds) - 1:
                counts[index] += 1
                break
    return tuple(c / len(scores) for c in counts)


def as_yaml(calibration: Calibration, extends: str | None) -> str:
    lines = [f"# calibrated on {calibration.count} requests: mix "
             + ", ".join(f"{a:.1%}" for a in calibration.achieved)]
    if extends:
        lines.append(f"extends: {extends}")
    lines += ["llm_routing:", "  complexity_detection:", "    thresholds:"]
    lines += [f"      {level}: {bound}" for level, bound in calibration.thresholds]
    return "\n".join(lines) + "\n"
