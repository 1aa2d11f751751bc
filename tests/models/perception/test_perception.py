"""Perception models on the real sample videos and weights (skipped when the assets are absent)."""

from __future__ import annotations

import os
from pathlib import Path

import av
import numpy as np
import onnxruntime as ort
import pytest

from videomdm.models.perception.config import PerceptionConfig
from videomdm.models.perception.detection import (
    Detections,
    YoloPoseConfig,
    YoloPoseDetector,
    YoloxDetector,
    box_iou,
    nms,
)
from videomdm.models.perception.letterbox import letterbox, letterbox_geometry
from videomdm.models.perception.pipeline import (
    PersonFrames,
    extractor_id,
    frame_budget,
    run_perception,
)
from videomdm.models.perception.pose2d import (
    VitPoseEstimator,
    box_to_center_size,
    crop_matrix,
    heatmaps_to_keypoints,
)
from videomdm.models.perception.tracking import (
    PersonTracker,
    backfill_track_starts,
    keep_long_tracks,
)
from videomdm.models.perception.video import VideoDecodeError, iter_frame_batches, probe_video
from videomdm.models.perception.weights import WeightsSource

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("YOLO_OFFLINE", "1")

ASSETS = Path(os.environ["VIDEOMDM_ASSETS"])
WEIGHTS_DIR = str(ASSETS / "weights")
WEIGHTS = WeightsSource((WEIGHTS_DIR,), offline=True)
SPORTS = ASSETS / "videos" / "sports2d_demo.mp4"
DANCER = ASSETS / "videos" / "mgt_dancer.avi"
needs_assets = pytest.mark.skipif(
    not (SPORTS.exists() and DANCER.exists() and (ASSETS / "weights").is_dir()),
    reason=f"sample videos/weights not found under {ASSETS} (set VIDEOMDM_ASSETS)",
)


def first_frames(path: Path, n: int) -> np.ndarray:
    return next(iter_frame_batches(path, n, threaded=False)).frames


# ---------------------------------------------------------------- geometry, NMS


def test_letterbox_round_trip() -> None:
    img = np.zeros((994, 1768, 3), np.uint8)
    out, lb = letterbox(img, 640)
    assert out.shape == (384, 640, 3)  # minimum padding, stride 32
    assert (lb.out_h, lb.out_w) == (384, 640)
    pts = np.array([[0.0, 0.0], [1767.0, 993.0], [500.5, 300.25]], np.float32)
    np.testing.assert_allclose(lb.to_image(lb.to_input(pts)), pts, atol=1e-3)
    square = letterbox_geometry(496, 518, 640)
    assert (square.out_h, square.out_w) == (640, 640)
    yolox = letterbox_geometry(994, 1768, 416, minimal=False, center=False)
    assert (yolox.out_h, yolox.out_w, yolox.pad_x, yolox.pad_y) == (416, 416, 0, 0)


def test_letterbox_content_lands_where_mapped() -> None:
    img = np.zeros((200, 400, 3), np.uint8)
    img[100, 300] = 255
    out, lb = letterbox(img, 320, pad_value=0)
    x, y = lb.to_input(np.array([300.0, 100.0]))
    assert out[int(round(y)), int(round(x))].max() > 0


def test_nms() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 9]], float)
    scores = np.array([0.9, 0.8, 0.7, 0.95])
    keep = nms(boxes, scores, iou_thr=0.5)
    assert keep.tolist() == [3, 2]
    assert nms(boxes, scores, iou_thr=0.99).tolist() == [3, 0, 1, 2]
    assert nms(boxes, scores, 0.5, max_det=1).tolist() == [3]
    assert box_iou(boxes[:1], boxes[:1])[0, 0] == pytest.approx(1.0)


# ---------------------------------------------------------------- decoding


@needs_assets
def test_decode_real_videos() -> None:
    info = probe_video(SPORTS)
    assert (info.width, info.height, info.fps, info.rotation) == (1768, 994, 30.0, 0)
    n, shapes = 0, set()
    for b in iter_frame_batches(SPORTS, 16):
        assert b.frames.dtype == np.uint8 and len(b.times) == len(b.indices) == len(b.frames)
        shapes.add(b.frames.shape[1:])
        n += len(b)
    assert n == 230 and shapes == {(994, 1768, 3)}
    idx = np.concatenate([b.indices for b in iter_frame_batches(DANCER, 64, stride=5)])
    assert idx.tolist() == list(range(0, 1571, 5))  # the AVI decodes 1571 of its 1572 frames
    t = np.concatenate([b.times for b in iter_frame_batches(DANCER, 64, target_fps=5.0)])
    np.testing.assert_allclose(np.diff(t), 0.2, atol=1e-6)


def _write_rotated_clip(path: Path, rotation: int) -> None:
    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=10)
        s.width, s.height, s.pix_fmt = 64, 32, "yuv420p"
        s.set_display_rotation(rotation)
        img = np.zeros((32, 64, 3), np.uint8)
        img[:8, :16] = 255  # a white block in the stored picture's top-left corner
        for _ in range(5):
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


def test_rotation_is_applied(tmp_path: Path) -> None:
    path = tmp_path / "rotated.mp4"
    _write_rotated_clip(path, 90)  # display matrix: rotate 90 deg counter-clockwise
    assert probe_video(path).rotation == 90
    assert probe_video(path).upright_size == (32, 64)
    frames = np.concatenate([b.frames for b in iter_frame_batches(path, 2)])
    assert frames.shape == (5, 64, 32, 3)
    # counter-clockwise: the stored top-left corner ends up bottom-left
    assert frames[0, -8:, :4].mean() > 200 and frames[0, :8, :4].mean() < 50


def test_corrupt_file_error_names_it(tmp_path: Path) -> None:
    bad = tmp_path / "broken_clip.mp4"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(VideoDecodeError, match="broken_clip.mp4"):
        list(iter_frame_batches(bad, 4))
    with pytest.raises(ValueError, match="missing.mp4"):
        probe_video(tmp_path / "missing.mp4")


# ---------------------------------------------------------------- detection


@needs_assets
def test_yolo_pose_pipeline_matches_direct_onnx_run() -> None:
    frames = first_frames(SPORTS, 4)
    det = YoloPoseDetector(YoloPoseConfig(sessions=1, threads=2), WEIGHTS)
    try:
        dets = det.detect(frames)  # batched pipeline
    finally:
        det.close()
    assert len(dets) == 4 and len(dets[0]) >= 1
    # direct: one frame, a plain session, the raw anchor with the best person score
    img, lb = letterbox(frames[0], 640)
    sess = ort.InferenceSession(
        f"{WEIGHTS_DIR}/yolo11n-pose.onnx", providers=["CPUExecutionProvider"]
    )
    x = (img.astype(np.float32) / 255.0).transpose(2, 0, 1)[None]
    raw = sess.run(None, {"images": x})[0][0]  # (56, A)
    best = raw[:, raw[4].argmax()]
    kp = best[5:].reshape(17, 3)
    kp_img = (kp[:, :2] - [lb.pad_x, lb.pad_y]) / lb.scale
    assert dets[0].keypoints is not None
    top = dets[0].keypoints[np.argmax(dets[0].scores)]  # (17, 3)
    assert np.abs(top[:, :2] - kp_img).max() < 1.0
    np.testing.assert_allclose(top[:, 2], kp[:, 2], atol=1e-3)
    assert dets[0].scores.max() == pytest.approx(best[4], abs=1e-3)


@needs_assets
def test_yolox_detects_people_on_sports2d() -> None:
    det = YoloxDetector(weights=WEIGHTS)
    try:
        dets = det.detect(first_frames(SPORTS, 2))
    finally:
        det.close()
    assert all(len(d) >= 1 for d in dets)
    assert dets[0].keypoints is None and dets[0].boxes.shape[1] == 4
    b = dets[0].boxes
    assert (b[:, 2] > b[:, 0]).all() and (b[:, 3] > b[:, 1]).all()


# ---------------------------------------------------------------- tracking + perception


@needs_assets
def test_tracking_dancer_one_dominant_track() -> None:
    cfg = PerceptionConfig(max_frames=60, min_track_len=10, batch_size=8)
    rows = PersonFrames.concat(list(run_perception(DANCER, cfg, WEIGHTS)))
    ids, counts = np.unique(rows.track_id, return_counts=True)
    assert counts.max() >= 0.95 * 60, (ids, counts)  # the dancer, from (almost) every frame
    assert rows.kp.shape == (len(rows), 17, 3) and rows.bbox.shape == (len(rows), 4)
    assert np.all(np.diff(rows.frame) >= 0)
    assert rows.kp[..., 2].mean() > 0.5


@needs_assets
def test_batch_size_changes_speed_not_rows() -> None:
    """Single frames (the CPU default) and batches of 8 give the same tracked people."""
    runs = {}
    for b in (0, 8):
        cfg = PerceptionConfig(max_frames=40, min_track_len=5, batch_size=b)
        runs[b] = PersonFrames.concat(list(run_perception(SPORTS, cfg, WEIGHTS)))
    one, eight = runs[0], runs[8]
    assert len(one) == len(eight) >= 40
    np.testing.assert_array_equal(one.frame, eight.frame)
    np.testing.assert_array_equal(one.track_id, eight.track_id)
    np.testing.assert_allclose(one.kp, eight.kp, atol=1e-2)  # pixels and scores
    np.testing.assert_allclose(one.bbox, eight.bbox, atol=1e-2)


def test_frame_budget_picks_batch_by_device_and_memory() -> None:
    assert frame_budget(1920, 1080, PerceptionConfig()) == (1, 2)  # CPU: single frames
    assert frame_budget(1280, 720, PerceptionConfig(device="cuda"))[0] == 8
    assert frame_budget(1920, 1080, PerceptionConfig(batch_size=4))[0] == 4
    assert frame_budget(7680, 4320, PerceptionConfig(device="cuda"))[0] < 8  # 8K frames: capped
    with pytest.raises(ValueError, match="batch_size"):
        PerceptionConfig(batch_size=-1)


def test_track_cleanup() -> None:
    tracker = PersonTracker()
    box = np.array([[10, 10, 50, 100]], np.float32)
    ids = [tracker.update(box + i, np.array([0.9], np.float32), t=i / 30) for i in range(5)]
    ids_flat = np.concatenate(ids)
    assert ids_flat[0] == -1 and len(set(ids_flat[1:].tolist())) == 1  # ByteTrack's warm-up
    frames = np.arange(5)
    boxes = np.concatenate([box + i for i in range(5)])
    filled = backfill_track_starts(frames, ids_flat, boxes)
    assert (filled == filled[1]).all()
    assert keep_long_tracks(np.array([0, 0, 0, 1, -1]), 2).tolist() == [1, 1, 1, 0, 0]


@needs_assets
def test_extractor_id_names_models_and_settings() -> None:
    a = extractor_id(PerceptionConfig(), WEIGHTS)
    assert a == extractor_id(PerceptionConfig(batch_size=2, threads=1), WEIGHTS)
    assert a != extractor_id(PerceptionConfig(det_conf=0.5), WEIGHTS)
    assert a.startswith("yolo-pose-") and len(a) < 40
    with pytest.raises(ValueError, match="valid"):
        PerceptionConfig(pose="openpose")


# ---------------------------------------------------------------- ViTPose


def tiny_vitpose() -> VitPoseEstimator:
    import torch
    from transformers import VitPoseBackboneConfig, VitPoseConfig, VitPoseForPoseEstimation

    torch.manual_seed(0)
    backbone = VitPoseBackboneConfig(  # type: ignore[call-arg]
        image_size=[256, 192],
        patch_size=[16, 16],
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        mlp_ratio=2,
        out_indices=[1],
    )
    config = VitPoseConfig(backbone_config=backbone, num_labels=17)  # type: ignore[call-arg]
    return VitPoseEstimator(model=VitPoseForPoseEstimation(config))


def test_vitpose_tiny_random_shapes() -> None:
    est = tiny_vitpose()
    frames = np.random.default_rng(0).integers(0, 255, (2, 240, 320, 3), dtype=np.uint8)
    boxes = np.array([[10, 20, 100, 200], [150, 30, 210, 120]], np.float32)
    dets = [Detections(boxes, np.ones(2, np.float32)), Detections(boxes[:0], np.zeros(0))]
    out = est.estimate(frames, dets)
    assert [o.shape for o in out] == [(2, 17, 3), (0, 17, 3)]
    assert np.isfinite(out[0]).all()


def test_vitpose_heatmap_peak_maps_to_image_point() -> None:
    box = np.array([[200.0, 100.0, 290.0, 380.0]])
    centers, sizes = box_to_center_size(box, 192 / 256)
    target = np.array([231.7, 305.2])  # an image point inside the crop
    m = crop_matrix(centers[0], sizes[0], (192, 256))
    crop_xy = m[:, :2] @ target + m[:, 2]  # in the 192x256 crop
    hm_xy = crop_xy * (np.array([47, 63]) / np.array([191, 255]))  # corner-aligned heatmap
    yy, xx = np.mgrid[0:64, 0:48]
    heat = np.exp(-((xx - hm_xy[0]) ** 2 + (yy - hm_xy[1]) ** 2) / (2 * 2.0**2))
    heat = np.broadcast_to(heat, (1, 17, 64, 48)).astype(np.float32)
    kp = heatmaps_to_keypoints(heat, centers, sizes, refine="dark")
    assert np.abs(kp[0, :, :2] - target).max() < 0.5
    assert kp[0, 0, 2] == pytest.approx(heat.max(), abs=1e-6)
    coarse = heatmaps_to_keypoints(heat, centers, sizes, refine="none")
    assert np.abs(coarse[0, 0, :2] - target).max() > np.abs(kp[0, 0, :2] - target).max()


@needs_assets
def test_vitpose_backend_in_pipeline() -> None:
    cfg = PerceptionConfig(pose="vitpose", detector="yolox", max_frames=6, min_track_len=1)
    rows = PersonFrames.concat(
        list(run_perception(SPORTS, cfg, WEIGHTS, pose_estimator=tiny_vitpose()))
    )
    assert len(rows) >= 4 and rows.kp.shape[1:] == (17, 3)
