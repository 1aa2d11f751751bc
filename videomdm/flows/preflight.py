"""What a command checks before it starts a flow: cheap reads that fail early with one line.

A flow that fails on bad input fails after the Prefect server has started and its modules have
loaded (seconds), so what can be known up front is checked here first: the input exists, the
device can run, the model or clip asked for is there. The same reads also tell when there is
nothing to do, and then no flow (and no server) is started at all. Nothing here imports Prefect
or torch; the flows still check for themselves (deployments call them directly).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from videomdm.config import Settings
from videomdm.errors import UserError
from videomdm.storage import Lake
from videomdm.storage.catalog import VideoJob, clip_with_motion, latest_extractor, pending_videos
from videomdm.storage.releases import check_new_name, release_versions
from videomdm.storage.runs import LIFTER, TRAIN, get_run, latest_run

log = logging.getLogger(__name__)


def check_collection(name: str | None) -> str | None:
    """A collection name: None (every collection) or a non-blank name."""
    if name is not None and not name.strip():
        raise UserError("--collection must not be empty or blank")
    return None if name is None else name.strip()


def check_lake_exists(lake: Lake) -> None:
    """A reading command on a lake that is not there (a typo, a file) is an error, not an empty
    answer. A folder with no table yet is an empty lake."""
    if not lake.local:
        return
    root = Path(lake.root)
    if root.is_file():
        raise UserError(f"the lake {root} is a file, not a folder (VIDEOMDM_LAKE)")
    if not root.exists():
        raise UserError(
            f"no lake at {root}: the folder does not exist (VIDEOMDM_LAKE); "
            "`videomdm ingest` creates it"
        )


def check_writable_lake(lake: Lake) -> None:
    """A writing command needs the lake root to be a folder (or not yet exist)."""
    if lake.local and Path(lake.root).is_file():
        raise UserError(f"the lake {lake.root} is a file, not a folder (VIDEOMDM_LAKE)")


@dataclass(frozen=True)
class IngestPlan:
    files: int  # video files under the source
    todo: int  # of them, new or changed since the last ingest


def plan_ingest(lake: Lake, source: str, collection: str) -> IngestPlan:
    """How many video files under ``source`` an ingest would inspect (the rest are unchanged)."""
    from videomdm.storage.catalog import is_unchanged, known_videos
    from videomdm.storage.sources import list_videos

    files = list_videos(source)  # a missing source is a SourceNotFoundError (a UserError)
    known = known_videos(lake)
    return IngestPlan(len(files), sum(not is_unchanged(f, known, collection) for f in files))


@dataclass(frozen=True)
class ExtractPlan:
    extractor: str
    jobs: tuple[VideoJob, ...]  # videos lacking keypoints from this extractor


def plan_extract(lake: Lake, s: Settings, pose: str, device: str, collection: str | None):
    """The extractor id and the videos an extract would run; a device that cannot run or a
    missing weights file is a ``UserError`` here, before any video is touched."""
    from videomdm.models.perception.config import PerceptionConfig
    from videomdm.models.perception.detection import providers_for
    from videomdm.models.perception.pipeline import extractor_id

    cfg = PerceptionConfig(pose=pose, detector="yolo-pose", device=device)  # type: ignore[arg-type]
    providers_for(device)  # raises when this onnxruntime cannot run on the device
    extractor = extractor_id(cfg, s.weights_source())
    return ExtractPlan(extractor, tuple(pending_videos(lake, extractor, collection)))


def check_extracted(lake: Lake) -> None:
    """``clips`` needs keypoints."""
    latest_extractor(lake)


def check_mocap(dirs: list[str]) -> None:
    """Mocap folders given to train or score a lifter exist."""
    missing = [d for d in dirs if not Path(d).is_dir()]
    if missing:
        raise UserError(f"--mocap {', '.join(missing)}: no such folder")


def check_lifter(lake: Lake) -> None:
    """``lift`` needs a trained lifter."""
    if latest_run(lake, LIFTER) is None:
        raise UserError(
            "no trained lifter in the lake; run `videomdm train-lifter --mocap DIR` first"
        )


def check_release(lake: Lake, release: str | None) -> None:
    if release is not None:
        release_versions(lake, release)  # an unknown name is a UserError naming the releases


def check_model(lake: Lake, model: str | None) -> None:
    """``generate``/``reconstruct`` need a trained VideoMDM: ``model`` (a checkpoint file or a
    training run id) or the newest one."""
    if model is not None:
        if Path(model).is_file() or get_run(lake, model, TRAIN) is not None:
            return
        raise UserError(f"--model {model!r} is neither a checkpoint file nor a training run id")
    if latest_run(lake, TRAIN) is None:
        raise UserError("no trained VideoMDM in the lake; run `videomdm train` first")


def check_generate(n: int, seconds: float) -> None:
    if n < 1:
        raise UserError(f"-n must be at least 1, got {n}")
    if not seconds > 0:
        raise UserError(f"--seconds must be more than 0, got {seconds}")


def check_clip(lake: Lake, clip_id: str) -> None:
    """``reconstruct`` needs the clip and its lifted motion (its camera)."""
    clip_with_motion(lake, clip_id, None)


def check_inputs(lake: Lake, release: str | None, mocap: list[str] | None) -> None:
    """Fail before hours of work: a taken release name, or no lifter and nothing to train one."""
    if release is not None:
        check_new_name(lake, release)
    if not mocap and latest_run(lake, LIFTER) is None:
        raise UserError(
            "no trained lifter in the lake and no mocap to train one: pass --mocap DIR "
            "(e.g. ../shared/assets/mocap) or run `videomdm train-lifter --mocap DIR` first"
        )
