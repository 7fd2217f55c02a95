"""Rate ladders: the highest rate a target sustains, found by steps of rising offered load.

A step runs the target at one offered rate for the ladder's length and says whether it held
(bench/sip_load.summary plus the target's own checks). The ladder climbs by its factor until a
step does not hold, then tries once between the last step that held and the first that did not.
The sustained figure is the achieved rate of the highest step that held.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from .sip_plan import GENERATOR_MARGIN, Ladder

Step = dict[str, Any]
RunStep = Callable[[float], Step]


def climb(ladder: Ladder, run_step: RunStep) -> dict[str, Any]:
    steps: list[Step] = []
    held: Step | None = None
    failed: Step | None = None
    for rate in ladder.rates():
        step = run_step(rate)
        steps.append(step)
        if not step["holds"]:
            failed = step
            break
        held = step
    if held is not None and failed is not None:
        between = math.sqrt(held["offered_per_s"] * failed["offered_per_s"])
        step = run_step(round(between))
        steps.append(step)
        if step["holds"]:
            held = step
    return {
        "steps": steps,
        "sustained_per_s": held["per_second"] if held else 0.0,
        "sustained_offered_per_s": held["offered_per_s"] if held else 0.0,
        "limit_found": failed is not None,
        "stopped_by": failed["problems"] if failed else [],
    }


def generator_check(
    climbed: dict[str, Any], run_step: RunStep, run_step_one_more: RunStep
) -> dict[str, Any]:
    """Is the figure the target's or the load generator's? At GENERATOR_MARGIN above the
    sustained rate, the same load processes and then one process more: if only the larger
    generator holds that rate, one process more raises the figure by more than the margin, and
    the figure measured the generator. If both hold, the ladder's step was coarse: the higher
    rate becomes the figure (and the generator was not the limit)."""
    offered = round(climbed["sustained_offered_per_s"] * (1 + GENERATOR_MARGIN))
    same = run_step(offered)
    more = run_step_one_more(offered)
    climbed["steps"].append(same)
    if same["holds"]:
        climbed["sustained_per_s"] = max(climbed["sustained_per_s"], same["per_second"])
        climbed["sustained_offered_per_s"] = offered
    bound = bool(more["holds"] and not same["holds"]) or not climbed["limit_found"]
    return {
        "offered_per_s": offered,
        "same_processes": same,
        "one_more_process": more,
        "generator_bound": bound,
        "note": f"at {offered}/s ({GENERATOR_MARGIN:.0%} above the sustained rate): "
        f"{'held' if same['holds'] else 'did not hold'} with the same processes, "
        f"{'held' if more['holds'] else 'did not hold'} with one more"
        + (": bound by the load generator" if bound else ": the generator was not the limit"),
    }
