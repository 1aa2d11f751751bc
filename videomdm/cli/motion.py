"""Commands over motion: the lifter, VideoMDM training, generation, reconstruction."""

from __future__ import annotations

import dataclasses
import json
import sys
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from videomdm.cli import (
    OutFormat,
    _flow,
    _print_result,
    _settings,
    _start_api,
    app,
    console,
)
from videomdm.config import Preset, Settings
from videomdm.models.mdm.config import GUIDANCE_KINDS, GuidanceConfig, GuidanceKind, Supervision

CameraChoice = Literal["calibration", "default"]


class GuidanceChoice(str, Enum):
    """The guidance kinds as typer wants them for a list option (it takes no Literal list)."""

    dps = "dps"
    adam = "adam"


assert tuple(GuidanceChoice) == GUIDANCE_KINDS, "GuidanceChoice lists every guidance kind"

if TYPE_CHECKING:
    from videomdm.flows.evaluate import EvaluationConfig
    from videomdm.tasks.train import TrainRequest, TrainResult


@app.command("train-lifter")
def train_lifter(
    mocap: Annotated[list[str], typer.Option("--mocap", help="Mocap folder(s); repeatable.")],
    steps: Annotated[int | None, typer.Option(help="Training steps (default: config).")] = None,
    seed: int = 0,
    if_missing: Annotated[bool, typer.Option(help="Do nothing if a lifter is trained.")] = False,
):
    """Train the 2D-to-3D lifter on mocap seen through random cameras; records a run."""
    from videomdm.flows.preflight import check_mocap, check_writable_lake
    from videomdm.storage import open_lake
    from videomdm.storage.runs import LIFTER, latest_run

    lake = open_lake(_settings().lake)
    check_writable_lake(lake)
    if if_missing and (run := latest_run(lake, LIFTER)) is not None:
        console.print(f"lifter run {run.run_id} exists; not training another (--if-missing)")
        return
    check_mocap(mocap)
    _start_api()
    from videomdm.flows.motion import train_lifter_flow

    r = _flow(lambda: train_lifter_flow(mocap, steps=steps, seed=seed, lake=lake.root))
    m = r.metrics
    console.print(
        f"lifter run {r.run_id}: validation PA-MPJPE {m['pa_mpjpe_mm']:.1f} mm clean, "
        f"{m['noisy_pa_mpjpe_mm']:.1f} mm noisy; checkpoint {r.checkpoint_uri}"
    )


@app.command()
def lift(collection: Annotated[str | None, typer.Option("--collection", "-c")] = None):
    """Lift every clip to 3D with the current lifter (the `motions` table)."""
    from videomdm.flows.preflight import check_collection, check_lake_exists, check_lifter
    from videomdm.storage import open_lake

    lake = open_lake(_settings().lake)
    collection = check_collection(collection)
    check_lake_exists(lake)
    check_lifter(lake)
    _start_api()
    from videomdm.flows.motion import lift_flow

    r = _flow(lambda: lift_flow(collection=collection, lake=lake.root))
    console.print(f"{r.motions} motions from {r.videos} videos ({r.lifter_id})")


@app.command("eval-lifter")
def eval_lifter(
    mocap: Annotated[list[str], typer.Option("--mocap", help="Mocap folder(s); repeatable.")],
    split: Annotated[str, typer.Option(help="val: only clips held out in training; all.")] = "val",
    fmt: Annotated[OutFormat, typer.Option("--format", "-f")] = "table",
):
    """MPJPE, PA-MPJPE (mm) and acceleration error of the current lifter, clean and noisy 2D."""
    import pyarrow as pa

    from videomdm.flows.preflight import check_lake_exists, check_lifter, check_mocap
    from videomdm.storage import open_lake

    lake = open_lake(_settings().lake)
    check_lake_exists(lake)
    check_lifter(lake)
    check_mocap(mocap)
    _start_api()
    from videomdm.flows.motion import eval_lifter_flow

    m = _flow(lambda: eval_lifter_flow(mocap, split=split, lake=lake.root))
    if fmt == "json":
        sys.stdout.write(json.dumps(m) + "\n")
        return
    rows = [
        {
            "model": name,
            "2d": noise,
            "mpjpe_mm": round(m[f"{p}mpjpe_mm"], 1),
            "pa_mpjpe_mm": round(m[f"{p}pa_mpjpe_mm"], 1),
            "accel_error": round(m[f"{p}accel_error"], 1),
        }
        for name, base in (("lifter", ""), ("fixed-depth baseline", "baseline_"))
        for noise, p in (("clean", base), ("noisy", base + "noisy_"))
    ]
    _print_result(pa.Table.from_pylist(rows), fmt)


@app.command()
def train(
    release: Annotated[str | None, typer.Option(help="Dataset release (default: now).")] = None,
    supervision: Annotated[Supervision, typer.Option(help="2d: VideoMDM; 3d: baseline.")] = "2d",
    preset: Annotated[Preset, typer.Option(help="Model size and schedule.")] = "small",
    steps: Annotated[int | None, typer.Option(help="Training steps (preset default).")] = None,
    resume: Annotated[str | None, typer.Option(help="Run id to continue exactly.")] = None,
):
    """Train VideoMDM on lifted clips; under torchrun, one rank per process (DDP)."""
    from videomdm.flows.preflight import check_lake_exists, check_release
    from videomdm.storage import open_lake

    s = _settings()
    lake = open_lake(s.lake)
    check_lake_exists(lake)
    check_release(lake, release)
    if s.world_size > 1:  # torchrun: every rank trains, rank 0 records; no Prefect flow per rank
        from videomdm.tasks.train import TrainRequest

        req = TrainRequest(release, supervision, preset, steps, resume)
        result = _train_ddp(s, req)
    else:
        _start_api()
        from videomdm.flows.train import train_flow

        result = _flow(lambda: train_flow(release, supervision, preset, steps, s.lake, resume))
    if s.rank == 0:
        loss = "-" if result.loss is None else f"{result.loss:.4g}"
        console.print(
            f"run {result.run_id}: step {result.step}, loss {loss}, checkpoint {result.checkpoint}"
        )


def _train_ddp(s: Settings, req: TrainRequest) -> TrainResult:
    import torch
    import torch.distributed as dist

    from videomdm.storage import open_lake
    from videomdm.tasks.train import run_training

    cuda = s.resolved_device() == "cuda"
    device = f"cuda:{s.local_rank}" if cuda else "cpu"
    if cuda:
        torch.cuda.set_device(s.local_rank)
    dist.init_process_group("nccl" if cuda else "gloo")
    try:
        return run_training(open_lake(s.lake), req, device, s.rank, s.world_size)
    finally:
        dist.destroy_process_group()


@app.command()
def generate(
    text: Annotated[str, typer.Option("--text", "-t", help="What the motion shows.")],
    n: Annotated[int, typer.Option("-n", help="Samples.")] = 4,
    seconds: Annotated[float, typer.Option(help="Length of each motion.")] = 4.0,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for .npy and .gif.")] = Path(
        "out"
    ),
    model: Annotated[str | None, typer.Option(help="Run id or checkpoint file.")] = None,
    seed: int = 0,
    guidance: Annotated[float, typer.Option(help="Classifier-free guidance scale.")] = 2.5,
):
    """Generate 3D motions from text with the newest trained VideoMDM (or --model)."""
    from videomdm.flows.preflight import check_generate, check_lake_exists, check_model
    from videomdm.storage import open_lake

    s = _settings()
    lake = open_lake(s.lake)
    check_generate(n, seconds)
    check_lake_exists(lake)
    check_model(lake, model)
    _start_api()
    from videomdm.flows.generate import generate_flow
    from videomdm.models.evaluation.plausibility import describe_samples

    r = _flow(lambda: generate_flow(text, n, seconds, str(out), model, s.lake, seed, guidance))
    for g in r.motions:
        console.print(f"{g.npy}  {g.animation}")
    console.print(f"player (open in a browser): {r.player}")
    if r.stats:
        console.print(describe_samples(r.stats))


@app.command()
def reconstruct(
    clip: Annotated[str, typer.Option("--clip", help="Clip id (see the clips table).")],
    model: Annotated[str | None, typer.Option(help="Run id or checkpoint file.")] = None,
    strength: Annotated[
        float, typer.Option(help="1: from noise; <1: from the lifter's motion noised this far.")
    ] = GuidanceConfig.strength,
    guidance: Annotated[
        GuidanceKind,
        typer.Option(help="dps: 2D-loss gradient through the denoiser; adam: fit x0."),
    ] = "dps",
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write an mp4, an HTML player, a gif here.")
    ] = None,
    seed: int = 0,
):
    """3D motion of a clip sampled with its 2D keypoints and camera as guidance."""
    from videomdm.flows.preflight import check_clip, check_lake_exists, check_model
    from videomdm.storage import open_lake

    s = _settings()
    lake = open_lake(s.lake)
    GuidanceConfig(kind=guidance, strength=strength)  # a bad --strength: one line, now
    check_lake_exists(lake)
    check_model(lake, model)
    check_clip(lake, clip)
    _start_api()
    from videomdm.flows.generate import reconstruct_flow

    r = _flow(
        lambda: reconstruct_flow(
            clip, model, s.lake, strength, seed, str(out) if out else None, guidance
        )
    )
    console.print(f"clip {clip}: {r.frames} frames written to motions (lifter_id videomdm)")
    if r.pictures is not None:
        p = r.pictures
        for what, path in (("video", p.video), ("player", p.player), ("gif", p.animation)):
            if path:
                console.print(f"{what}: {path}")


@app.command()
def evaluate(
    mocap: Annotated[
        list[str] | None, typer.Option("--mocap", help="Mocap folder(s); repeatable.")
    ] = None,
    multiview: Annotated[
        Path | None,
        typer.Option(help="A folder of calibrated views of one recording: score real video."),
    ] = None,
    ladder: Annotated[
        bool,
        typer.Option("--ladder", help="With --mocap: the ladder R0-R4 at one budget (DESIGN.md)."),
    ] = False,
    recipe: Annotated[
        list[str] | None,
        typer.Option(help="--ladder: training recipe(s) (default, free, plain, ...); repeatable."),
    ] = None,
    rungs: Annotated[
        list[str] | None, typer.Option("--rung", help="--ladder: rung(s), e.g. R0; repeatable.")
    ] = None,
    view: Annotated[
        list[str] | None, typer.Option(help="--multiview: the view scored (default: each).")
    ] = None,
    calibration: Annotated[
        Path | None, typer.Option(help="--multiview: calibration file (default: the folder's).")
    ] = None,
    lifter: Annotated[
        str | None, typer.Option(help="--multiview: lifter run id or checkpoint file.")
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="--multiview: also reconstruct with this VideoMDM.")
    ] = None,
    camera: Annotated[
        CameraChoice,
        typer.Option(help="--multiview: lift through the calibration or the default FOV."),
    ] = "calibration",
    steps: Annotated[int | None, typer.Option(help="Training steps per model.")] = None,
    cameras: Annotated[int, typer.Option(help="Random cameras per training clip.")] = 4,
    n_generate: Annotated[int, typer.Option(help="Generated motions per model.")] = 64,
    strength: Annotated[
        list[float], typer.Option(help="Reconstruction start: 1 noise, <1 the lifter; repeatable.")
    ] = [1.0, 0.5],  # noqa: B006 - typer reads list defaults, never mutates them
    guidance: Annotated[
        list[GuidanceChoice],  # type: ignore[valid-type]  # built from GUIDANCE_KINDS
        typer.Option(help="Reconstruction guidance; repeatable."),
    ] = list(GuidanceChoice),  # noqa: B006 - every kind by default; typer never mutates it
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Folder for plots (out/eval, out/multiview).")
    ] = None,
    target_source: Annotated[
        str | None,
        typer.Option(
            help="Off-domain protocol: pretrain the lifter on every other mocap source "
            "and train and score the models on this one (e.g. bandai_bvh)."
        ),
    ] = None,
    lifter_steps: Annotated[
        int | None, typer.Option(help="With --target-source: lifter training steps.")
    ] = None,
    sample_steps: Annotated[int, typer.Option(help="DDIM steps per reconstruction.")] = 50,
    fmt: Annotated[OutFormat, typer.Option("--format", "-f")] = "table",
):
    """Lifter vs VideoMDM (2D only) vs 3D-supervised MDM on held-out mocap (known 3D); with
    --multiview, the lifter (and VideoMDM) on real video against multi-view triangulation."""
    if (not mocap) == (multiview is None):
        raise typer.BadParameter("give either --mocap DIR or --multiview DIR")
    if multiview is not None:
        from videomdm.cli.multiview import MultiviewOptions, evaluate_multiview

        opts = MultiviewOptions(
            multiview, view, calibration, lifter, model, camera, out, sample_steps, fmt
        )
        evaluate_multiview(opts)
        return
    from videomdm.flows.preflight import check_mocap

    check_mocap(mocap or [])
    if ladder:
        _evaluate_ladder(mocap or [], recipe, rungs, steps, target_source, out, fmt)
        return
    _start_api()
    from videomdm.flows.evaluate import EvaluationConfig

    cfg = EvaluationConfig(
        steps=steps,
        cameras=cameras,
        n_generate=n_generate,
        strengths=tuple(strength),
        guidances=tuple(str(g.value) for g in guidance),  # type: ignore[attr-defined]
        sample_steps=sample_steps,
        target_source=target_source,
        lifter_steps=lifter_steps,
    )
    _evaluate_mocap(mocap or [], cfg, out or Path("out/eval"), fmt)


def _evaluate_ladder(
    mocap: list[str],
    recipes: list[str] | None,
    rungs: list[str] | None,
    steps: int | None,
    target_source: str | None,
    out: Path | None,
    fmt: OutFormat,
) -> None:
    from videomdm.flows.ladder import LadderRequest, ladder_configs
    from videomdm.models.evaluation.ladder_config import RUNGS, LadderConfig

    if len(mocap) != 1:
        raise typer.BadParameter("--ladder takes one --mocap folder")
    base = LadderConfig(
        mocap=mocap[0],
        rungs=tuple(rungs or RUNGS),
        steps=steps or LadderConfig.steps,
        target_source=target_source or LadderConfig.target_source,
    )
    req = LadderRequest(base, tuple(recipes or ("default",)), str(out or Path("out/ladder")))
    ladder_configs(req)  # names checked before the flow starts
    _start_api()
    from videomdm.flows.ladder import ladder_flow

    r = _flow(lambda: ladder_flow(req))
    if fmt == "json":
        sys.stdout.write(json.dumps([x.to_dict() for x in r.rungs]) + "\n")
        return
    console.print(Path(r.table).read_text(), soft_wrap=True)
    console.print(f"table {r.table}\nnumbers {r.json}\nplot {r.plot}")


def _evaluate_mocap(mocap: list[str], cfg: EvaluationConfig, out: Path, fmt: OutFormat) -> None:
    import pyarrow as pa

    from videomdm.flows.evaluate import evaluate_flow

    m = _flow(lambda: evaluate_flow(mocap, cfg, out=str(out), lake=_settings().lake))
    if fmt == "json":
        sys.stdout.write(json.dumps(dataclasses.asdict(m), default=float) + "\n")
        return
    for part, scores in (("reconstruction", m.reconstruction), ("generation", m.generation)):
        if scores:
            rows = [
                {"method": k, **{c: round(v, 3) for c, v in r.items()}} for k, r in scores.items()
            ]
            console.print(f"[bold]{part}[/bold]")
            _print_result(pa.Table.from_pylist(rows), fmt)
    console.print(f"pictures: {', '.join(m.pictures.values())}")
