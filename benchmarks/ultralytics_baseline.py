"""The reference the extraction speed target is set against: Ultralytics' own torch predictor.

    python benchmarks/ultralytics_baseline.py [--assets ../shared/assets] [--warmup 10]

Prints frames/s of ``YOLO("yolo11n-pose.pt").predict(video, stream=True)`` on the two sample
videos, so ``benchmarks/extract.py`` can be compared with it on the same machine (issue 3 asks
for at least 2x). Ultralytics is not a project dependency; run this with a Python that has it.
On this project's CPU machine that takes a scratch venv, because torchvision's only wheel for
this torch build has no CPU operators (``operator torchvision::nms does not exist``):

    python -m venv /tmp/ul && echo "$PWD/.venv/lib/python3.11/site-packages" \
        > /tmp/ul/lib/python3.11/site-packages/videomdm.pth
    /tmp/ul/bin/pip install --no-deps ultralytics ultralytics-thop torchvision==0.29.2
    /tmp/ul/bin/pip install opencv-python-headless polars psutil pyyaml requests
    YOLO_OFFLINE=1 /tmp/ul/bin/python benchmarks/ultralytics_baseline.py

When ``torchvision.ops.nms`` cannot run, the script puts a module in its place that calls
Ultralytics' own torch NMS (``ultralytics.utils.nms.TorchNMS``, the path Ultralytics takes
itself when torchvision is absent); everything else is stock Ultralytics.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import types
from pathlib import Path

from _samples import SAMPLE_VIDEOS, default_assets


def _ensure_torchvision_nms() -> str:
    """Which NMS Ultralytics will use; Ultralytics' own TorchNMS stands in if torchvision fails."""
    import torch

    try:
        import torchvision.ops

        torchvision.ops.nms(torch.rand(4, 4), torch.rand(4), 0.5)
        return "torchvision"
    except Exception:  # noqa: BLE001 (an import error or a missing C++ operator)
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]

    def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
        from ultralytics.utils.nms import TorchNMS

        return TorchNMS.nms(boxes, scores, iou_threshold)

    tv = types.ModuleType("torchvision")
    tv.__version__ = "0"  # type: ignore[attr-defined]
    tv.ops = types.ModuleType("torchvision.ops")  # type: ignore[attr-defined]
    tv.ops.nms = nms  # type: ignore[attr-defined]
    sys.modules["torchvision"], sys.modules["torchvision.ops"] = tv, tv.ops  # type: ignore[attr-defined]
    return "ultralytics TorchNMS"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--assets", default=default_assets())
    ap.add_argument("--videos", default=",".join(SAMPLE_VIDEOS), help="comma separated")
    ap.add_argument("--warmup", type=int, default=10, help="frames not timed at the start")
    args = ap.parse_args()
    os.environ.setdefault("YOLO_OFFLINE", "1")
    nms_kind = _ensure_torchvision_nms()

    import torch
    import ultralytics
    from ultralytics import YOLO

    assets = Path(args.assets)
    model = YOLO(str(assets / "weights" / "yolo11n-pose.pt"))
    print(
        f"ultralytics {ultralytics.__version__}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, NMS: {nms_kind}"
    )
    print("| video | frames | frames/s | persons/frame |")
    print("|---|---|---|---|")
    for name in args.videos.split(","):
        n, people, t0 = 0, 0, 0.0
        for result in model.predict(str(assets / "videos" / name), stream=True, verbose=False):
            n += 1
            people += len(result.boxes)
            if n == args.warmup:
                t0 = time.perf_counter()
        fps = (n - args.warmup) / (time.perf_counter() - t0)
        print(f"| {name} | {n} | {fps:.1f} | {people / n:.2f} |", flush=True)


if __name__ == "__main__":
    main()
