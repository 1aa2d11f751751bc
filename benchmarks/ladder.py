"""Train and score the ladder's rungs (``videomdm.models.evaluation.ladder``) for one recipe at
equal budget, on one CPU thread.

    PYTHONPATH=. python benchmarks/ladder.py --recipe vel7 --rungs R0,R1 --steps 2000
    PYTHONPATH=. python benchmarks/ladder.py --recipe default,vel7,vel7_skip  # all, one table
    PYTHONPATH=. python benchmarks/ladder.py --recipe default,vel7 --report  # stored rungs only

Each rung is stored as ``OUT/<recipe>/<rung>.json`` the moment it finishes; a rung already
stored for the same recipe, budget, protocol and scoring is read back instead of trained, so
rungs can run one at a time. The shared protocol (lifters, views, FID encoder: ~6 minutes)
is cached as ``OUT/protocol_<key>.pkl``. Prints the table of the rungs asked for and writes
``OUT/ladder_<recipes>.png`` (bars of the x0 error at t = 2 and the within-prompt diversity).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import pickle
from collections.abc import Sequence
from pathlib import Path

import torch

from videomdm.models.evaluation.ladder import (
    RECIPES,
    RUNGS,
    LadderConfig,
    LadderData,
    LadderResult,
    RungResult,
    build_protocol,
    run_ladder,
    table,
)


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


def _stored(cfg: LadderConfig, out: Path) -> dict[str, RungResult]:
    folder = out / cfg.recipe.name
    paths = {r: folder / f"{r}.json" for r in cfg.rungs}
    return {
        r: RungResult.from_dict(json.loads(p.read_text())) for r, p in paths.items() if p.exists()
    }


def _store(out: Path):
    def write(r: RungResult) -> None:
        path = out / r.recipe / f"{r.rung}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(r.to_dict(), indent=1))
        logging.info("wrote %s", path)

    return write


def plot(rungs: Sequence[RungResult], path: Path) -> Path:
    """Bars per rung: x0 error at t = 2 (with the copy baseline) and within-prompt diversity
    (with the real held-out clips' value)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{r.recipe}\n{r.rung}" for r in rungs]
    fig, (a, b) = plt.subplots(1, 2, figsize=(4 + 1.2 * len(rungs), 4))
    a.bar(labels, [r.metrics["err_t2"] for r in rungs], color="tab:blue")
    a.axhline(rungs[0].metrics["copy_t2"], color="k", ls="--", label="returning x_t")
    a.set_ylabel("x0_hat error at t = 2 (mm, root-relative)")
    a.legend()
    b.bar(labels, [r.metrics["within_prompt"] for r in rungs], color="tab:orange")
    b.axhline(rungs[0].real["within_prompt"], color="k", ls="--", label="real clips")
    b.set_ylabel("diversity among 8 samples of one prompt (m)")
    b.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def ladder(cfg: LadderConfig, out: Path, report: bool = True) -> LadderResult:
    """The ladder with the stored rungs and protocol of ``out``; with ``report`` the table
    printed and the plot written."""
    result = run_ladder(cfg, lambda: _protocol(cfg, out), _stored(cfg, out), _store(out))
    if report:
        _report(result.rungs, out / f"ladder_{cfg.recipe.name}.png")
    return result


def _report(rungs: Sequence[RungResult], path: Path) -> None:
    print(table(rungs))
    if rungs:
        print(f"plot: {plot(rungs, path)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument(
        "--recipe", default="default", help=f"one or more of {sorted(RECIPES)}, comma-separated"
    )
    ap.add_argument("--rungs", default=",".join(RUNGS), help="comma-separated, e.g. R0,R1")
    ap.add_argument("--steps", type=int, default=LadderConfig.steps, help="training steps per rung")
    ap.add_argument("--out", default="/tmp/ladder", help="results folder")
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
    cfgs = [LadderConfig(recipe=RECIPES[n], rungs=rungs, steps=args.steps) for n in names]
    if args.report:
        found = [(c, _stored(c, out)) for c in cfgs]
        done = [s[r] for c, s in found for r in rungs if r in s and s[r].key == c.rung_key()]
    else:
        done = [r for c in cfgs for r in ladder(c, out, report=False).rungs]
    _report(done, out / f"ladder_{'_'.join(names)}.png")


if __name__ == "__main__":
    main()
