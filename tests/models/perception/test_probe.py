"""Probing catches truncated uploads by decoding the last frames."""

from __future__ import annotations

import subprocess

import pytest

from videomdm.models.perception.video import VideoDecodeError, probe_video


@pytest.fixture(scope="module")
def faststart_mp4(tmp_path_factory, videos_dir):
    """A 4 s H.264 MP4 with its index at the front: truncation leaves it openable."""
    out = tmp_path_factory.mktemp("probe") / "fast.mp4"
    subprocess.run(
        [
            "ffmpeg",
            "-loglevel",
            "error",
            "-y",
            "-i",
            str(videos_dir / "mgt_dancer.avi"),
            "-t",
            "4",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-movflags",
            "+faststart",
            str(out),
        ],
        check=True,
    )
    return out


def test_probe_reads_metadata(faststart_mp4):
    info = probe_video(str(faststart_mp4))
    assert (info.width, info.height, info.fps, info.codec) == (518, 496, 25.0, "h264")
    assert info.frame_count == 100 and abs(info.duration_s - 4.0) < 0.05


@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_truncated_file_with_index_in_front_is_caught(faststart_mp4, tmp_path, keep):
    data = faststart_mp4.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(VideoDecodeError, match="truncated|Invalid data"):
        probe_video(str(cut))


def test_rotation_metadata_is_read(faststart_mp4, tmp_path):
    rotated = tmp_path / "rot.mp4"
    subprocess.run(
        [
            "ffmpeg",
            "-loglevel",
            "error",
            "-y",
            "-i",
            str(faststart_mp4),
            "-c",
            "copy",
            "-metadata:s:v:0",
            "rotate=90",
            str(rotated),
        ],
        check=True,
    )
    assert probe_video(str(rotated)).rotation == 90
