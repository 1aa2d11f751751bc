"""The whole pipeline with the lake and the videos on a real S3-compatible server: ingest from
the bucket, two extracts at once, clips, lifter, lift, release, training, SQL and time travel,
each a real command with ``VIDEOMDM_STORAGE_OPTIONS`` as its only object-store setting."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

CLI = [sys.executable, "-m", "videomdm.cli"]
LAKE = "s3://videomdm/lake"


def _cut(src, dst, seconds=3) -> None:
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-y", "-i", str(src), "-t", str(seconds)]
        + ["-c:v", "libx264", "-preset", "ultrafast", str(dst)],
        check=True,
    )


@pytest.fixture(scope="module")
def s3_env(s3_server, videos_dir, tmp_path_factory):
    """Two short sample videos in the bucket, and the environment of every command."""
    from videomdm.flows.server import start_server

    options, client = s3_server
    d = tmp_path_factory.mktemp("s3videos")
    for name in ("sports2d_demo.mp4", "mgt_dancer.avi"):
        short = d / (name.split(".")[0] + "_3s.mp4")
        _cut(videos_dir / name, short)
        client.upload_file(str(short), "videomdm", f"videos/{short.name}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(VIDEOMDM_LAKE=LAKE, VIDEOMDM_STORAGE_OPTIONS=json.dumps(options))
    # one Prefect server for every command, as a user with `prefect server start` has
    server = start_server()
    server.wait_ready()
    env["PREFECT_API_URL"] = server.api_url
    yield env
    server.stop()


def _run(env, *args, timeout=600):
    p = subprocess.run(CLI + list(args), env=env, capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, f"{args} exited {p.returncode}:\n{p.stdout}\n{p.stderr[-3000:]}"
    return p


def _sql(env, query, *extra):
    return json.loads(_run(env, "sql", query, "--format", "json", *extra).stdout)


def _extract_twice_at_once(env) -> list[str]:
    procs = [
        subprocess.Popen(
            CLI + ["extract", "-c", "s3"],
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=900)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    return outs


@pytest.mark.slow
def test_pipeline_on_s3(s3_env, s3_server, assets, videos_dir, tmp_path):
    env = s3_env
    assert "2 new" in _run(env, "ingest", "s3://videomdm/videos", "-c", "s3").stdout
    videos = _sql(env, "select uri, status from videos order by uri")
    assert [v["uri"].startswith("s3://videomdm/videos/") for v in videos] == [True, True]
    assert {v["status"] for v in videos} == {"ok"}

    _extract_twice_at_once(env)  # each video is extracted once, whichever run gets it
    dup = "select video_id, track_id, frame, count(*) as n from keypoints group by all having n > 1"
    assert _sql(env, dup) == []
    per_video = (
        "select item_id, count(*) as n from markers where table_name = 'keypoints' group by 1"
    )
    assert [m["n"] for m in _sql(env, per_video)] == [1, 1]
    assert _sql(env, "select count(*) as n from keypoints")[0]["n"] > 50

    _run(env, "clips", "-c", "s3")
    mocap = str(assets / "mocap" / "cmu_bvh_subject131")
    lifter = _run(env, "train-lifter", "--mocap", mocap, "--steps", "30").stdout
    assert "s3://videomdm/lake/checkpoints/lifter/" in lifter
    _run(env, "lift", "-c", "s3")
    assert _sql(env, "select count(*) as n from motions")[0]["n"] >= 1
    _run(env, "release", "s3-v1")
    trained = _run(env, "train", "--release", "s3-v1", "--steps", "2").stdout
    assert "s3://videomdm/lake/checkpoints/videomdm/" in trained
    runs = _sql(env, "select release, status from runs where kind = 'train'")
    assert runs == [{"release": "s3-v1", "status": "ok"}]

    # time travel: a third video arrives after the release
    _, client = s3_server
    third = tmp_path / "sports_2s.mp4"
    _cut(videos_dir / "sports2d_demo.mp4", third, seconds=2)
    client.upload_file(str(third), "videomdm", "videos/later/sports_2s.mp4")
    assert "1 new" in _run(env, "ingest", "s3://videomdm/videos", "-c", "s3").stdout
    count = "select count(*) as n from videos"
    assert _sql(env, count) == [{"n": 3}]
    assert _sql(env, count, "--release", "s3-v1") == [{"n": 2}]
    assert _sql(env, count, "--at", "videos=1") == [{"n": 2}]
