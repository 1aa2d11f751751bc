"""Static int8 (QDQ) quantisation of YOLO11n-pose: speed and keypoint fidelity against fp32.

    python benchmarks/quantize_yolo.py [--assets ../shared/assets] [--out DIR]
        [--exclude decode|decode+final|none] [--act-type quint8|qint8]
        [--calib-method minmax|percentile] [--calib-frames 64]
        [--compare-frames 100] [--threads 2] [--reps 12]

1. Builds an int8 QDQ model with ``onnxruntime.quantization.quantize_static`` (per-channel
   QInt8 weights, QUInt8 or QInt8 activations, MinMax calibration on letterboxed frames spread
   over both sample videos). ``--exclude decode`` keeps the detection head's decode graph
   (DFL softmax, anchor/stride arithmetic, keypoint decode, final concat: every ``/model.23/``
   node outside the cv2/cv3/cv4 conv branches) in fp32; ``decode+final`` also keeps the three
   last 1x1 convs of each branch (box, class, keypoint logits) in fp32. The model goes to
   ``--out`` or a temporary folder, never into the repo or the shared assets.
2. Times fp32 vs int8 sessions (``make_session``: 2 intra-op threads, no spinning) on real
   letterboxed frames, batch 1 and 8, alternating fp32 / int8 runs so background load hits
   both alike; reports the median frames/s of each.
3. Decodes both models' outputs with ``decode_yolo_pose`` (Ultralytics thresholds as in
   ``YoloPoseConfig``) on ``--compare-frames`` frames per video and compares: share of fp32
   people matched by an int8 box with IoU > 0.5, and for matched people the keypoint error in
   original image pixels (keypoints with fp32 score > 0.5 only).
4. Prints one rich table.

Needs the ``onnx`` package (``onnxruntime.quantization`` imports it).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from _samples import SAMPLE_VIDEOS
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process
from rich.console import Console
from rich.table import Table

from videomdm.models.perception.detection import (
    Detections,
    YoloPoseConfig,
    box_iou,
    decode_yolo_pose,
    make_session,
    yolo_input,
)
from videomdm.models.perception.letterbox import Letterbox, letterbox_batch, letterbox_geometry
from videomdm.models.perception.video import iter_frame_batches, probe_video

log = logging.getLogger("benchmarks.quantize_yolo")

HEAD = "/model.23/"
BRANCHES = ("/model.23/cv2.", "/model.23/cv3.", "/model.23/cv4.")


# ---------------------------------------------------------------- frames


def video_frames(path: Path, n: int, imgsz: int = 640) -> tuple[np.ndarray, Letterbox]:
    """``n`` frames spread evenly over the video, letterboxed: (n, 3, h, w) float32 and geometry."""
    info = probe_video(path)
    total = info.frame_count or int(round(info.fps * info.duration_s)) or n
    stride = max(1, total // n)
    frames = [b.frames for b in iter_frame_batches(path, 16, stride=stride, max_frames=n)]
    rgb = np.concatenate(frames)[:n]
    lb = letterbox_geometry(rgb.shape[1], rgb.shape[2], imgsz)
    return yolo_input(letterbox_batch(rgb, lb)), lb


class FramesReader(CalibrationDataReader):
    """Feeds calibration frames one at a time (several input sizes are fine: MinMax per run)."""

    def __init__(self, batches: list[np.ndarray], same_shape: bool = False) -> None:
        if same_shape:  # histogram calibrators stack all runs: pad to one shape, as a full
            h = max(x.shape[2] for x in batches)  # (non-minimal) letterbox would, grey 114
            w = max(x.shape[3] for x in batches)
            padded = []
            for x in batches:
                dy, dx = (h - x.shape[2]) // 2, (w - x.shape[3]) // 2
                canvas = np.full((len(x), 3, h, w), 114 / 255, np.float32)
                canvas[:, :, dy : dy + x.shape[2], dx : dx + x.shape[3]] = x
                padded.append(canvas)
            batches = padded
        self._items = [x[i : i + 1] for x in batches for i in range(len(x))]
        self._it = iter(self._items)

    def get_next(self) -> dict[str, np.ndarray] | None:
        x = next(self._it, None)
        return None if x is None else {"images": x}

    def rewind(self) -> None:
        self._it = iter(self._items)


# ---------------------------------------------------------------- quantisation


def excluded_nodes(model: onnx.ModelProto, mode: str) -> list[str]:
    names = []
    for node in model.graph.node:
        if not node.name.startswith(HEAD):
            continue
        in_branch = node.name.startswith(BRANCHES)
        if mode in ("decode", "decode+final") and not in_branch:
            names.append(node.name)
        # last conv of each branch: /model.23/cv2.0/cv2.0.2/Conv (no "/conv/" wrapper, no act)
        if mode == "decode+final" and in_branch and node.op_type == "Conv":
            if "/conv/" not in node.name:
                names.append(node.name)
    return names


def build_int8(
    src: Path,
    out_dir: Path,
    calib: list[np.ndarray],
    exclude: str,
    act_type: str,
    method: str = "minmax",
) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    prep = out_dir / "yolo11n-pose.prep.onnx"
    for skip_symbolic in (False, True):  # the dynamic-shape export defeats symbolic inference
        try:  # it leaves temp files (*.data, sym_shape_infer_temp.onnx) in the cwd
            with contextlib.chdir(out_dir):
                quant_pre_process(str(src), str(prep), skip_symbolic_shape=skip_symbolic)
            break
        except Exception as e:  # noqa: BLE001 - pre-processing is an optimisation only
            log.warning("quant_pre_process(skip_symbolic_shape=%s) failed: %s", skip_symbolic, e)
    else:
        prep = src
    model = onnx.load(str(prep))
    exclude_names = excluded_nodes(model, exclude)
    dst = out_dir / f"yolo11n-pose.int8-{exclude}-{act_type}-{method}.onnx"
    t = time.perf_counter()
    quantize_static(
        str(prep),
        str(dst),
        FramesReader(calib, same_shape=method != "minmax"),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        weight_type=QuantType.QInt8,
        activation_type=QuantType.QUInt8 if act_type == "quint8" else QuantType.QInt8,
        calibrate_method=CalibrationMethod.MinMax
        if method == "minmax"
        else CalibrationMethod.Percentile,
        nodes_to_exclude=exclude_names,
        extra_options={
            "ActivationSymmetric": act_type == "qint8",
            "CalibPercentile": 99.999,
            "CalibMovingAverage": False,
        },
    )
    log.info(
        "quantised in %.1f s, %d nodes kept fp32 -> %s",
        time.perf_counter() - t,
        len(exclude_names),
        dst,
    )
    return dst


# ---------------------------------------------------------------- timing


def paired_fps(sess_a, sess_b, x: np.ndarray, reps: int) -> tuple[float, float]:  # noqa: ANN001
    """Median frames/s of two sessions on the same input, runs alternating (a, b, b, a, ...)."""
    feed = {"images": x}
    for s in (sess_a, sess_b):
        s.run(None, feed)  # warm-up
    ta, tb = [], []
    for r in range(reps):
        order = ((sess_a, ta), (sess_b, tb)) if r % 2 == 0 else ((sess_b, tb), (sess_a, ta))
        for s, acc in order:
            t = time.perf_counter()
            s.run(None, feed)
            acc.append(time.perf_counter() - t)
    n = len(x)
    return n / float(np.median(ta)), n / float(np.median(tb))


# ---------------------------------------------------------------- accuracy


@dataclass
class Agreement:
    people_fp32: int = 0
    people_int8: int = 0
    matched: int = 0
    errors: list[np.ndarray] | None = None  # per matched keypoint, original-image pixels
    score_diff: list[np.ndarray] | None = None  # |box score fp32 - int8| of matched people

    def __post_init__(self) -> None:
        self.errors, self.score_diff = [], []

    def add(self, a: Detections, b: Detections) -> None:
        self.people_fp32 += len(a)
        self.people_int8 += len(b)
        if len(a) == 0 or len(b) == 0:
            return
        iou = box_iou(a.boxes, b.boxes)
        used = np.zeros(len(b), bool)
        # greedy matching, most overlapping pairs first
        for flat in np.argsort(-iou, axis=None):
            i, j = np.unravel_index(flat, iou.shape)
            if iou[i, j] <= 0.5:
                break
            if used[j] or np.isnan(iou[i, 0]):
                continue
            used[j] = True
            iou[i, :] = np.nan  # row i taken
            self.matched += 1
            ka, kb = a.keypoints[i], b.keypoints[j]
            vis = ka[:, 2] > 0.5
            self.errors.append(np.linalg.norm(ka[vis, :2] - kb[vis, :2], axis=1))
            self.score_diff.append(np.abs(a.scores[i] - b.scores[j])[None])

    def stats(self) -> dict[str, float]:
        e = np.concatenate(self.errors) if self.errors else np.zeros(0)
        sd = np.concatenate(self.score_diff) if self.score_diff else np.zeros(0)
        if len(e) == 0:
            e = np.array([np.nan])
        return {
            "match": self.matched / max(self.people_fp32, 1),
            "n_kp": float(np.isfinite(e).sum()),
            "med": float(np.median(e)),
            "p95": float(np.percentile(e, 95)),
            "le1": float(np.mean(e <= 1.0)),
            "le3": float(np.mean(e <= 3.0)),
            "max": float(np.max(e)),
            "score_diff": float(np.median(sd)) if len(sd) else float("nan"),
        }


def compare(sess_a, sess_b, x: np.ndarray, lb: Letterbox, batch: int = 8) -> Agreement:  # noqa: ANN001
    c = YoloPoseConfig()
    agg = Agreement()
    for k in range(0, len(x), batch):
        xb = x[k : k + batch]
        oa = sess_a.run(None, {"images": xb})[0]
        ob = sess_b.run(None, {"images": xb})[0]
        for a, b in zip(oa, ob, strict=True):
            agg.add(
                decode_yolo_pose(a, lb, c.conf, c.iou, c.max_det),
                decode_yolo_pose(b, lb, c.conf, c.iou, c.max_det),
            )
    return agg


# ---------------------------------------------------------------- main


def main() -> None:
    here = Path(__file__).resolve().parent
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--assets", type=Path, default=here.parent.parent / "shared" / "assets")
    p.add_argument("--out", type=Path, default=None, help="folder for the int8 model")
    p.add_argument("--int8", type=Path, default=None, help="reuse this int8 model, skip build")
    p.add_argument("--exclude", choices=("decode", "decode+final", "none"), default="decode")
    p.add_argument("--act-type", choices=("quint8", "qint8"), default="quint8")
    p.add_argument("--calib-method", choices=("minmax", "percentile"), default="minmax")
    p.add_argument("--calib-frames", type=int, default=64, help="in total, split over videos")
    p.add_argument("--compare-frames", type=int, default=100, help="per video")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--reps", type=int, default=12, help="timed runs per model and batch size")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    src = args.assets / "weights" / "yolo11n-pose.onnx"
    videos = [args.assets / "videos" / v for v in SAMPLE_VIDEOS]
    tmp = None
    if args.int8 is not None:
        out_dir = Path(".")  # unused
    elif args.out is None:
        tmp = tempfile.TemporaryDirectory(prefix="yolo-int8-")
        out_dir = Path(tmp.name)
    else:
        out_dir = args.out.resolve()
        repo, assets = here.parent.resolve(), args.assets.resolve()
        if out_dir.is_relative_to(repo) or out_dir.is_relative_to(assets):
            raise SystemExit(f"--out {out_dir} is inside the repo or the shared assets")

    t = time.perf_counter()
    data = {v.name: video_frames(v, args.compare_frames) for v in videos}
    log.info("decoded + letterboxed frames in %.1f s", time.perf_counter() - t)
    per_video = args.calib_frames // len(videos)
    calib = []
    for x, _ in data.values():  # calibration frames: evenly spread subset of each video's set
        idx = np.linspace(0, len(x) - 1, per_video).round().astype(int)
        calib.append(x[idx])

    int8_path = args.int8 or build_int8(
        src, out_dir, calib, args.exclude, args.act_type, args.calib_method
    )
    fp32 = make_session(src, "cpu", args.threads)
    int8 = make_session(int8_path, "cpu", args.threads)

    table = Table(
        title=f"YOLO11n-pose fp32 vs int8 QDQ (exclude={args.exclude}, act={args.act_type}, "
        f"calib={args.calib_method}, "
        f"{args.threads} threads, no spinning)"
    )
    for col in ("video", "input", "batch", "fp32 f/s", "int8 f/s", "speed-up"):
        table.add_column(col, justify="right")
    for col in (
        "people fp32/int8",
        "box match",
        "kpts",
        "kp err med px",
        "p95 px",
        "<=1 px",
        "<=3 px",
        "max px",
        "|Δscore| med",
    ):
        table.add_column(col, justify="right")

    for name, (x, lb) in data.items():
        agg = compare(fp32, int8, x, lb)
        s = agg.stats()
        for bs in (1, 8):
            reps = args.reps * (3 if bs == 1 else 1)
            f_a, f_b = paired_fps(fp32, int8, x[:bs], reps)
            acc = (
                [
                    f"{agg.people_fp32}/{agg.people_int8}",
                    f"{s['match']:.1%}",
                    f"{s['n_kp']:.0f}",
                    f"{s['med']:.2f}",
                    f"{s['p95']:.2f}",
                    f"{s['le1']:.1%}",
                    f"{s['le3']:.1%}",
                    f"{s['max']:.1f}",
                    f"{s['score_diff']:.3f}",
                ]
                if bs == 1
                else [""] * 9
            )
            table.add_row(
                name if bs == 1 else "",
                f"{lb.out_h}x{lb.out_w}" if bs == 1 else "",
                str(bs),
                f"{f_a:.1f}",
                f"{f_b:.1f}",
                f"{f_b / f_a:.2f}x",
                *acc,
            )
    console = Console()
    if console.width < 180:  # piped output defaults to 80 columns and truncates every cell
        console = Console(width=180)
    console.print(table)
    mb = [Path(f).stat().st_size / 1e6 for f in (src, int8_path)]
    sizes = f"fp32 {mb[0]:.1f} MB, int8 {mb[1]:.1f} MB"
    console.print(
        f"model files: {sizes}; int8 model at {int8_path}"
        + (" (temporary, deleted on exit)" if tmp else "")
    )
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
