"""What the perception benchmarks run on: the bundled assets and the two sample videos."""

from __future__ import annotations

import os
from pathlib import Path

SAMPLE_VIDEOS = ("sports2d_demo.mp4", "mgt_dancer.avi")


def default_assets() -> str:
    """``$VIDEOMDM_ASSETS``, else ``../shared/assets`` beside the checkout."""
    here = Path(__file__).resolve().parents[2] / "shared" / "assets"
    return os.environ.get("VIDEOMDM_ASSETS", str(here))
