"""Calibration files, triangulation, track association, frame offsets and the truth's
consistency: on the real Qualisys calibration of the multi-view recording, with real mocap
seen by its cameras."""

from __future__ import annotations

import json

import numpy as np
import pytest

from videomdm.models.evaluation.multiview import build_scene, truth_consistency, truth_for_view
from videomdm.models.motion.calibration import CalibrationError, camera_for, load_calibration
from videomdm.models.motion.multiview import (
    Person,
    ViewTracks,
    associate,
    find_offsets,
    person_keypoints,
)
from videomdm.models.motion.skeleton import FLIP_PERM
from videomdm.models.motion.triangulation import (
    epipolar_distance,
    fix_swaps,
    sample_at,
    triangulate,
)


@pytest.fixture(scope="module")
def qca(assets):
    path = assets / "multiview" / "pose2sim_multiperson" / "Calib.qca.txt"
    if not path.exists():
        pytest.skip(f"{path} is absent")
    return path


@pytest.fixture(scope="module")
def cams(qca):
    return list(load_calibration(qca).values())


@pytest.fixture(scope="module")
def walk(mocap):
    """A real motion (Y up) placed in the calibration's room (Z up), 2 s at 60 fps."""
    j = mocap[0][:120].astype(np.float64)
    j = j[..., [0, 2, 1]] * np.array([1.0, -1.0, 1.0])  # Y up -> Z up, still right-handed
    return j - j[:, 11:13].mean((0, 1)) + np.array([-0.5, -0.2, 1.0])


def _seen(cams, joints, rng=None, noise_px=0.0):
    """Each camera's keypoints ``(V, T, 17, 3)`` of world joints, with pixel noise."""
    out = []
    for cam in cams:
        px, z = cam.project(joints)
        assert (z > 0).all()
        if rng is not None:
            px = px + rng.normal(scale=noise_px, size=px.shape)
        out.append(np.concatenate([px, np.full(px.shape[:-1] + (1,), 0.9)], -1))
    return np.stack(out)


def test_qualisys_file_gives_opencv_cameras_in_metres(qca, cams):
    assert [c.name for c in cams] == ["cam01", "cam02", "cam03", "cam04"]
    c = cams[0]
    k = c.intrinsics
    assert (k.width, k.height) == (1088, 1920)
    assert k.fx == pytest.approx(107599.671875 / 64) and k.cy == pytest.approx(60680.792969 / 64)
    assert np.allclose(c.center, [1.4602, -1.9092, 1.8965], atol=1e-4)  # the file's x, y, z mm
    R, _ = c.pose()  # noqa: N806
    assert np.allclose(R @ R.T, np.eye(3)) and np.linalg.det(R) > 0
    # every camera looks down (it hangs near the ceiling) and at the room's middle
    for cam in cams:
        R, _ = cam.pose()  # noqa: N806
        assert R[2, 2] < 0  # viewing direction points to -Z (down)
        px, z = cam.project(np.array([0.0, 0.0, 1.0]))
        assert z > 0 and 0 < px[0] < 1088 and 0 < px[1] < 1920
    assert camera_for(load_calibration(qca), "cam03.mp4").name == "cam03"
    assert camera_for(load_calibration(qca), "other.mp4") is None


def test_distortion_round_trip(cams):
    c = cams[0]
    px = np.array([[10.0, 20.0], [544.0, 960.0], [1000.0, 1900.0], [np.nan, 3.0]])
    u = c.undistort(px)
    assert np.isnan(u[3]).all()
    assert np.allclose(c.distort(u[:3]), px[:3], atol=1e-3)


@pytest.mark.parametrize("fmt", ["json", "toml"])
def test_plain_calibration_file_round_trip(tmp_path, cams, fmt):
    import cv2

    entries = {}
    for c in cams:
        R, t = c.pose()  # noqa: N806
        k = c.intrinsics
        entries[c.name] = {
            "size": [k.width, k.height],
            "matrix": c.intrinsics.K.tolist(),
            "distortions": list(c.dist[:4]),
            "rotation": cv2.Rodrigues(R)[0].ravel().tolist(),  # Pose2Sim writes Rodrigues
            "translation": t.tolist(),
        }
    path = tmp_path / f"calib.{fmt}"
    if fmt == "json":
        path.write_text(json.dumps(entries))
    else:
        lines = []
        for name, e in entries.items():
            lines.append(f"[{name}]")
            lines += [f"{key} = {json.dumps(value)}" for key, value in e.items()]
        path.write_text("\n".join(lines) + "\n[metadata]\nadjusted = false\n")
    loaded = load_calibration(path)
    for c in cams:
        got = loaded[c.name]
        assert np.allclose(got.pose()[0], c.pose()[0], atol=1e-9)
        assert np.allclose(got.pose()[1], c.pose()[1])
        assert got.intrinsics == c.intrinsics
        assert got.dist[:4] == pytest.approx(c.dist[:4])


def test_one_camera_intrinsics_file(tmp_path):
    path = tmp_path / "phone.intrinsics.json"
    path.write_text(json.dumps({"fx": 1500, "fy": 1500, "cx": 540, "cy": 960}))
    (cam,) = load_calibration(path).values()
    assert cam.name == "phone" and not cam.has_pose
    assert (cam.intrinsics.width, cam.intrinsics.height) == (1080, 1920)
    assert camera_for({"phone": cam}, "anything.mp4") is cam  # one camera: every video


@pytest.mark.parametrize(
    "name, text, problem",
    [
        ("calib.qca.txt", "<calibration><cameras><camera", "does not parse"),
        ("calib.toml", "[cam1]\nmatrix = [[1, 0], [0, 1]]\n", "'matrix' must be 3x3"),
        ("calib.json", '{"cam1": {"size": [10, 10]}}', "has no 'matrix' nor 'fx'"),
        (
            "calib.json",
            '{"cam1": {"fx": 1, "fy": 1, "cx": 0, "cy": 0, "rotation": [0, 0, 0]}}',
            "give both rotation and translation",
        ),
        ("calib.yaml", "a: 1", "unknown calibration format"),
    ],
)
def test_bad_calibration_files_say_which_file_and_what(tmp_path, name, text, problem):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(CalibrationError, match=problem) as e:
        load_calibration(path)
    assert str(path) in str(e.value)
    with pytest.raises(CalibrationError, match="no such calibration file"):
        load_calibration(tmp_path / "missing.toml")


def test_triangulation_recovers_the_motion_and_drops_a_bad_view(cams, walk):
    rng = np.random.default_rng(0)
    kp = _seen(cams, walk, rng, noise_px=2.0)
    X, err, used = triangulate(cams, kp)
    assert np.linalg.norm(X - walk, axis=-1).mean() < 0.01  # 2 px noise: under 1 cm
    assert np.nanmedian(err) < 4.0 and (used == 4).all()
    bad = kp.copy()
    bad[2, 10:20, 9, :2] += 150.0  # one view's wrist far off in some frames
    bad[1, :, 0, 2] = 0.1  # a view too unsure of the nose: not used
    X, err, used = triangulate(cams, bad)
    assert (used[10:20, 9] == 3).all() and np.isnan(err[2, 10:20, 9]).all()
    assert np.linalg.norm(X[10:20, 9] - walk[10:20, 9], axis=-1).max() < 0.02
    assert (used[:, 0] == 3).all()
    only_one = kp[:2].copy()
    only_one[1, ..., 2] = 0.0
    X, _, used = triangulate(cams[:2], only_one)
    assert np.isnan(X).all() and (used == 1).all()


def test_epipolar_distance_tells_people_apart(cams, walk):
    kp = _seen(cams, walk)
    other = _seen(cams, walk + np.array([1.0, 0.5, 0.0]))
    same = epipolar_distance(cams[0], cams[1], kp[0, ..., :2], kp[1, ..., :2])
    assert np.nanmax(same) < 1e-3
    assert np.nanmedian(epipolar_distance(cams[0], cams[1], kp[0, ..., :2], other[1, ..., :2])) > 50


def test_fix_swaps_undoes_a_mirrored_view(cams, walk):
    kp = _seen(cams, walk, np.random.default_rng(1), noise_px=2.0)
    bad = kp.copy()
    bad[1, 30:40] = bad[1, 30:40][:, list(FLIP_PERM)]
    fixed, changed = fix_swaps(cams, bad)
    assert changed[1, 30:40].all() and changed.sum() <= 12
    assert np.allclose(fixed[1, 30:40], kp[1, 30:40])


def test_tracks_are_associated_across_views_and_offsets_found(cams, walk):
    """Two people, track ids shuffled per view, a third track seen once, views shifted."""
    rng = np.random.default_rng(2)
    people = [walk, walk[::-1] + np.array([1.2, 0.8, 0.0])]
    shifts = [0, 2, -3, 1]  # view v's frame f shows time f - shift
    views = []
    for v, cam in enumerate(cams):
        kps = [_seen([cam], p, rng, 2.0)[0] for p in people]
        kps = [sample_at(k, np.arange(100) - shifts[v]) for k in kps]
        ids = [7, 3] if v % 2 else [3, 7]
        rows = [(ids[i], f, kps[i][f]) for i in range(2) for f in range(100)]
        rows += [(9, f, kps[0][f] + 300.0) for f in range(40)] if v == 0 else []
        rows = [r for r in rows if np.isfinite(r[2]).all()]
        t, f, k = (np.array(x) for x in zip(*rows, strict=True))
        views.append(ViewTracks.from_rows(cam.name, cam, 60.0, 100, t, f, k))
    found = associate(views)
    assert found == [Person(((3,), (7,), (3,), (7,))), Person(((7,), (3,), (7,), (3,)))]
    kps = [person_keypoints(views, p) for p in found]
    offsets = find_offsets(cams, kps)
    assert offsets.tolist() == shifts


def test_consistency_is_a_floor_that_grows_with_the_detections_noise(cams, walk):
    """One person seen by every camera: the truth of one view against the truths that leave
    out another view instead."""
    floors = []
    for noise in (0.0, 3.0, 12.0):
        rng = np.random.default_rng(0) if noise else None
        kps = _seen(cams, walk, rng, noise)
        frames = np.arange(len(walk))
        views = [
            ViewTracks.from_rows(c.name, c, 60.0, len(walk), 0 * frames, frames, k)
            for c, k in zip(cams, kps, strict=True)
        ]
        scene = build_scene(views)
        assert scene.offsets.tolist() == [0, 0, 0, 0]
        truth = truth_for_view(scene, 0, 0)
        assert truth is not None
        floors.append(truth_consistency(scene, truth))
    assert floors[0] < 1.0  # exact detections: every subset of views gives the same body
    assert floors[0] < floors[1] < floors[2] and floors[2] > 10.0
