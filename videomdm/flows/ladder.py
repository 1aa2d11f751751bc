"""`videomdm evaluate --ladder`: the ladder (DESIGN.md, "What is measured") for one or more
training recipes at one budget, rungs stored as they finish and reused when asked again."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from prefect import flow

from videomdm.errors import UserError
from videomdm.models.evaluation.ladder_config import LadderConfig, LadderData, RungResult
from videomdm.models.evaluation.ladder_recipes import RECIPES
from videomdm.tasks.ladder import ladder_protocol, stored_rungs, train_rungs, write_ladder_report


@dataclass(frozen=True)
class LadderRequest:
    """The recipes (names in ``ladder_recipes.RECIPES``) to run on ``base``'s rungs, data
    and budget."""

    base: LadderConfig
    recipes: tuple[str, ...] = ("default",)
    out: str = "out/ladder"


@dataclass(frozen=True)
class LadderReport:
    rungs: list[RungResult]
    table: str  # path of ladder.md
    json: str
    plot: str


def ladder_configs(req: LadderRequest) -> list[LadderConfig]:
    """One ``LadderConfig`` per recipe; unknown recipe names raise a UserError."""
    unknown = sorted(set(req.recipes) - set(RECIPES))
    if unknown:
        raise UserError(f"unknown recipes {unknown}; known: {', '.join(sorted(RECIPES))}")
    return [dataclasses.replace(req.base, recipe=RECIPES[name]) for name in req.recipes]


@flow(name="evaluate-ladder")
def ladder_flow(req: LadderRequest) -> LadderReport:
    """Every rung of every recipe at the same budget on the same views; what ``req.out``
    already holds for the same key is reused, so an interrupted ladder resumes."""
    rungs: list[RungResult] = []
    protocol: LadderData | None = None
    for cfg in ladder_configs(req):
        done = stored_rungs(cfg, req.out)
        if set(cfg.rungs) - set(done) and protocol is None:
            protocol = ladder_protocol(cfg)  # the same for every recipe: built once
        if protocol is None:  # every rung stored
            rungs += [done[r] for r in cfg.rungs]
        else:
            rungs += train_rungs(cfg, protocol, done, req.out)
    md, js, png = write_ladder_report(rungs, req.out)
    return LadderReport(rungs, md, js, png)
