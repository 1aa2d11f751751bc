"""Train and score the ladder's rungs (``videomdm.models.evaluation.ladder``) for one recipe at
equal budget, on one CPU thread.

    PYTHONPATH=. python benchmarks/ladder.py --recipe vel350 --rungs R0,R1 --steps 2000
    PYTHONPATH=. python benchmarks/ladder.py --recipe default,vel350,skip  # all, one table
    PYTHONPATH=. python benchmarks/ladder.py --recipe default,vel350 --report  # stored rungs only

Each rung is stored as ``OUT/<recipe>/<rung>.json`` the moment it finishes; a rung already
stored for the same recipe, budget, protocol and scoring is read back instead of trained, so
rungs can run one at a time. The shared protocol (lifters, views, FID encoder: ~6 minutes)
is cached as ``OUT/protocol_<key>.pkl``. Prints the table of the rungs asked for and writes
``OUT/ladder_<recipes>.png`` (bars of the x0 error at t = 2 and the within-prompt diversity).
"""

from __future__ import annotations

import argparse
import logging
import os
import pickle
from collections.abc import Sequence
from pathlib import Path

import torch

from videomdm.models.evaluation.ladder import (
    LadderResult,
    build_protocol,
    read_rungs,
    run_ladder,
    write_rung,
)
from videomdm.models.evaluation.ladder_config import RUNGS, LadderConfig, LadderData, RungResult
from videomdm.models.evaluation.ladder_recipes import RECIPES
from videomdm.models.evaluation.ladder_scores import table
from videomdm.models.viz.plots import plot_ladder


def _protocol(cfg: LadderConfig, out: Path) -> LadderData:
    path = out / f"protocol_{cfg.protocol_key()}.pkl"
    if path.exists():
        with path.open("rb") as f:
            return pickle.load(f)
    data = build_protocol(cfg)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        pickle.dump(data, f)
    return data


def ladder(cfg: LadderConfig, out: Path, report: bool = True) -> LadderResult:
    """The ladder with the stored rungs and protocol of ``out``; with ``report`` the table
    printed and the plot written."""
    result = run_ladder(
        cfg, lambda: _protocol(cfg, out), read_rungs(cfg, out), lambda r: write_rung(r, out)
    )
    if report:
        _report(result.rungs, out / f"ladder_{cfg.recipe.name}.png")
    return result


def _report(rungs: Sequence[RungResult], path: Path) -> None:
    print(table(rungs))
    if rungs:
        print(f"plot: {plot_ladder(rungs, path)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument(
        "--recipe", default="default", help=f"one or more of {sorted(RECIPES)}, comma-separated"
    )
    ap.add_argument("--rungs", default=",".join(RUNGS), help="comma-separated, e.g. R0,R1")
    ap.add_argument("--steps", type=int, default=LadderConfig.steps, help="training steps per rung")
    ap.add_argument("--out", default="out/ladder", help="results folder")
    ap.add_argument(
        "--mocap",
        default=str(Path(os.environ.get("VIDEOMDM_ASSETS", "../shared/assets")) / "mocap"),
    )
    ap.add_argument("--report", action="store_true", help="only the stored rungs: train nothing")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)
    names = args.recipe.split(",")
    unknown = sorted(set(names) - set(RECIPES))
    if unknown:
        raise SystemExit(f"unknown recipes {unknown}; known: {sorted(RECIPES)}")
    rungs, out = tuple(args.rungs.split(",")), Path(args.out)
    cfgs = [
        LadderConfig(recipe=RECIPES[n], rungs=rungs, steps=args.steps, mocap=args.mocap)
        for n in names
    ]
    if args.report:
        found = [(c, read_rungs(c, out)) for c in cfgs]
        done = [s[r] for c, s in found for r in rungs if r in s and s[r].key == c.rung_key()]
    else:
        done = [r for c in cfgs for r in ladder(c, out, report=False).rungs]
    _report(done, out / f"ladder_{'_'.join(names)}.png")


if __name__ == "__main__":
    main()
