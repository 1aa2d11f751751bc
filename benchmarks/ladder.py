"""Train and score the ladder's rungs (``videomdm.models.evaluation.ladder``) for one recipe at
equal budget, on one CPU thread.

    PYTHONPATH=. python benchmarks/ladder.py --recipe vel7 --rungs R0,R1 --steps 2000

Each rung is stored as ``OUT/<recipe>/<rung>.json`` the moment it finishes; a rung already
stored for the same recipe, budget, protocol and scoring is read back instead of trained, so
rungs can run one at a time. The shared protocol (lifters, views, FID encoder: ~6 minutes)
is cached as ``OUT/protocol_<key>.pkl``. Prints the table of the rungs asked for and writes
``OUT/ladder_<recipe>.png`` (bars of the x0 error at t = 2 and the within-prompt diversity).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import pickle
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


def plot(result: LadderResult, path: Path) -> Path:
    """Bars per rung: x0 error at t = 2 (with the copy baseline) and within-prompt diversity
    (with the real held-out clips' value)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rungs = result.rungs
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


def ladder(cfg: LadderConfig, out: Path) -> LadderResult:
    """The ladder with the stored rungs and protocol of ``out``; the table printed and the
    plot written."""
    result = run_ladder(cfg, lambda: _protocol(cfg, out), _stored(cfg, out), _store(out))
    print(result.table())
    if result.rungs:
        print(f"plot: {plot(result, out / f'ladder_{cfg.recipe.name}.png')}")
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--recipe", default="default", choices=sorted(RECIPES))
    ap.add_argument("--rungs", default=",".join(RUNGS), help="comma-separated, e.g. R0,R1")
    ap.add_argument("--steps", type=int, default=LadderConfig.steps, help="training steps per rung")
    ap.add_argument("--out", default="/tmp/ladder", help="results folder")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)
    cfg = LadderConfig(
        recipe=RECIPES[args.recipe], rungs=tuple(args.rungs.split(",")), steps=args.steps
    )
    ladder(cfg, Path(args.out))


if __name__ == "__main__":
    main()
