"""A temporal 2D-to-3D lifter (VideoPose3D-style dilated convolutions), its synthetic
training data, training loop, checkpoints, and a gravity-aligned world frame for its output.

Input: normalised image coordinates ``u`` ``(T, 17, 2)`` and confidences ``(T, 17)``. A joint
whose confidence is 0 or whose value is NaN is masked (its features are zero). Output: 3D
joints in camera coordinates ``(T, 17, 3)`` (metres, OpenCV axes).

The network never sees absolute image scale: each frame's 2D pose is centred on its
confidence-weighted centroid ``c`` and divided by its RMS spread ``s`` (``c`` and ``log s``
are extra input channels). It predicts the root-relative pose in metres, the root's image
offset from ``c`` in units of ``s`` and ``r = log(z_root) + log(s)``; a person of fixed size
has ``z * s`` roughly constant, so ``r`` is a small residual however far the person stands.

The training set is mocap seen through random cameras (``sample_cameras``) with the
detector noise model; train and validation sets are split by clip (``split_by_clip``).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from videomdm.models.motion.cameras import DETECTOR_NOISE, NoiseConfig
from videomdm.models.motion.rays import centre_and_log_spread, fit_depth
from videomdm.models.motion.skeleton import FLIP_PERM, JOINT_INDEX, NUM_JOINTS, root

log = logging.getLogger(__name__)

N_FEAT = NUM_JOINTS * 3 + 3  # per frame: centred x, y and conf per joint; c_x, c_y, log s
N_OUT = NUM_JOINTS * 3 + 3  # per frame: root-relative pose; root offset du, dv; r
VAL_EVERY = 250  # steps between validation losses in the history
LOG_S0 = -2.5  # typical log spread of a person 4-6 m away: centres the log-scale channel


@dataclass(frozen=True)
class LifterConfig:
    channels: int = 128
    kernel: int = 3
    dilations: tuple[int, ...] = (1, 3, 9, 27)  # receptive field 1 + 2 * sum = 81 frames
    dropout: float = 0.0
    flip_average: bool = True  # lift also the mirrored input and average (test time only)
    # test time: move each frame's body along the ray through its root until its projection
    # is as large as the keypoints (``fit_depth``), the root's depth then low-passed at this
    # frequency (Hz); None: the network's own depth (on real video its bodies came out about
    # 20% too large: sequence MPJPE 169 -> 139 mm with 1 Hz)
    fit_depth_hz: float | None = 1.0
    # keypoint scores as input (weights of the centre and spread, an input channel); False:
    # every detected keypoint counts alike (a real detector's scores barely follow its errors)
    use_confidence: bool = True
    # training
    # validation PA-MPJPE (clean 2D): 60.7 mm at 1500 steps, 58.2-60.8 at 2000 by camera draw
    steps: int = 3000
    batch_size: int = 32
    window: int = 81  # frames per training window
    lr: float = 2e-3
    weight_decay: float = 1e-2
    root_weight: float = 0.1  # L1 on (du, dv, r) against the pose MPJPE in metres
    velocity_weight: float = 1.0  # L2 on frame-to-frame pose velocity (smoother motion)
    cameras_per_clip: int = 6
    # training cameras turned about their optical axis by up to this many degrees: phones are
    # held or mounted tilted (the multi-view recording's cameras roll -24 to +12 deg; in the
    # view rolled 24 deg the body's orientation error, N-MPJPE, fell 14-19% on both recordings)
    roll_deg: float = 30.0
    noisy_fraction: float = 0.6  # share of training views with detector noise
    # windows are drawn in proportion to clip length / (its source's frames) ** source_balance:
    # 0 samples every frame alike (the largest source dominates), 1 every source alike
    source_balance: float = 0.5
    # the 2D noise of the training views: the measured detector's (real video); the mocap
    # protocols, whose views carry the synthetic NoiseConfig(), train with that instead
    noise: NoiseConfig = DETECTOR_NOISE

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LifterConfig:
        d = dict(d)
        d.setdefault("fit_depth_hz", None)  # saved before it existed: lift as it did then
        d["dilations"] = tuple(d["dilations"])
        noise = dict(d["noise"])
        if noise.get("joint_scale") is not None:
            noise["joint_scale"] = tuple(noise["joint_scale"])
        d["noise"] = NoiseConfig(**noise)
        return cls(**d)


# --- network ------------------------------------------------------------------------------


def _bn_relu(cfg: LifterConfig) -> list[nn.Module]:
    # dropout only when asked: even at p=0 it draws a random mask on CPU, which is slow
    drop: list[nn.Module] = [nn.Dropout(cfg.dropout)] if cfg.dropout > 0 else []
    return [nn.BatchNorm1d(cfg.channels), nn.ReLU(), *drop]


class _Block(nn.Module):
    """Dilated temporal conv then 1x1 conv, residual (VideoPose3D's block). Replicate padding
    keeps the length, so a whole clip of any length is lifted in one pass."""

    def __init__(self, cfg: LifterConfig, dilation: int):
        super().__init__()
        pad = dilation * (cfg.kernel - 1) // 2
        self.net = nn.Sequential(
            nn.Conv1d(
                cfg.channels,
                cfg.channels,
                cfg.kernel,
                dilation=dilation,
                padding=pad,
                padding_mode="replicate",
                bias=False,
            ),
            *_bn_relu(cfg),
            nn.Conv1d(cfg.channels, cfg.channels, 1, bias=False),
            *_bn_relu(cfg),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, T)
        return x + self.net(x)


class Lifter(nn.Module):
    def __init__(self, cfg: LifterConfig):
        super().__init__()
        self.cfg = cfg
        d0 = cfg.dilations[0]
        self.expand = nn.Sequential(
            nn.Conv1d(
                N_FEAT,
                cfg.channels,
                cfg.kernel,
                dilation=d0,
                padding=d0 * (cfg.kernel - 1) // 2,
                padding_mode="replicate",
                bias=False,
            ),
            *_bn_relu(cfg),
        )
        self.blocks = nn.Sequential(*[_Block(cfg, d) for d in cfg.dilations[1:]])
        self.head = nn.Conv1d(cfg.channels, N_OUT, 1)

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        """Features ``(B, T, N_FEAT)`` to raw outputs ``(B, T, N_OUT)``."""
        x = self.expand(feat.transpose(1, 2))  # (B, C, T)
        return self.head(self.blocks(x)).transpose(1, 2)


# --- features and decoding ----------------------------------------------------------------


def make_features(u: np.ndarray, conf: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Network input ``(T, N_FEAT)`` float32, centre ``c`` ``(T, 2)`` and ``log s`` ``(T,)``
    from ``u`` ``(T, 17, 2)`` and ``conf`` ``(T, 17)``; NaN or zero-confidence joints are
    masked, frames with fewer than two usable joints take c and s interpolated in time."""
    u = np.asarray(u, dtype=np.float64)
    conf = np.asarray(conf, dtype=np.float64)
    valid = np.isfinite(u).all(-1) & np.isfinite(conf) & (conf > 0)  # (T, 17)
    w = np.where(valid, conf, 0.0)
    u0 = np.where(valid[..., None], u, 0.0)
    c, log_s = centre_and_log_spread(u, conf, LOG_S0)  # (T, 2), (T,)
    x = np.where(valid[..., None], (u0 - c[:, None]) / np.exp(log_s)[:, None, None], 0.0)
    x = np.clip(x, -10.0, 10.0)  # a wild outlier must not dominate the input
    n = len(u)
    feat = np.concatenate([x.reshape(n, 2 * NUM_JOINTS), w, c, (log_s - LOG_S0)[:, None]], axis=1)
    return feat.astype(np.float32), c, log_s


def input_conf(cfg: LifterConfig, conf: np.ndarray) -> np.ndarray:
    """The confidences the network sees: the scores, or 1 for every keypoint scored above 0
    (0: missing or filled) when ``cfg.use_confidence`` is off."""
    if cfg.use_confidence:
        return conf
    c = np.asarray(conf)
    return (np.nan_to_num(c) > 0).astype(c.dtype if c.dtype.kind == "f" else np.float32)


def decode(out: torch.Tensor, c: torch.Tensor, log_s: torch.Tensor) -> torch.Tensor:
    """Raw outputs ``(B, T, N_OUT)``, centre ``(B, T, 2)``, ``log s`` ``(B, T)`` to camera
    joints ``(B, T, 17, 3)``."""
    pose = out[..., : NUM_JOINTS * 3].unflatten(-1, (NUM_JOINTS, 3))  # root-relative, m
    duv, r = out[..., -3:-1], out[..., -1]
    log_z = (r - log_s).clamp(np.log(0.1), np.log(200.0))  # no overflow, no NaN
    z = torch.exp(log_z)[..., None]  # (B, T, 1)
    root_uv = c + torch.exp(log_s)[..., None] * duv
    root_cam = torch.cat([root_uv * z, z], dim=-1)  # (B, T, 3)
    return pose + root_cam[..., None, :]


def lift_many(
    model: Lifter, us: list[np.ndarray], confs: list[np.ndarray], max_frames: int = 4096
) -> list[np.ndarray]:
    """Lift several clips, batched by similar length (each padded at its end by repeating
    its last frame, which can change its last few frames slightly against lifting it alone).
    ``us[i]`` ``(T_i, 17, 2)``, ``confs[i]`` ``(T_i, 17)``; returns ``(T_i, 17, 3)`` each.
    ``max_frames`` caps a batch's padded size: small batches stay in cache (on 1 CPU thread
    4096 lifted 58k frames/s, 65536 only 26k)."""
    feats = [make_features(u, input_conf(model.cfg, cf)) for u, cf in zip(us, confs, strict=True)]
    order = sorted(
        (i for i in range(len(feats)) if len(feats[i][0])), key=lambda i: len(feats[i][0])
    )
    out = [np.zeros((0, NUM_JOINTS, 3), np.float32)] * len(feats)  # empty clips stay empty
    was_training = model.training
    model.eval()
    while order:
        n = 1  # ascending lengths: the last clip of a batch sets its padded length
        while n < len(order) and (n + 1) * len(feats[order[n]][0]) <= max_frames:
            n += 1
        batch, order = order[:n], order[n:]
        for i, joints in zip(batch, _lift_padded(model, [feats[i] for i in batch]), strict=True):
            hz = model.cfg.fit_depth_hz
            out[i] = joints if hz is None else fit_depth(joints, us[i], confs[i], hz)
    model.train(was_training)
    return out


@torch.no_grad()
def _lift_padded(model: Lifter, feats: list[tuple[np.ndarray, ...]]) -> list[np.ndarray]:
    n_max = max(len(f[0]) for f in feats)
    padded = [[x[np.minimum(np.arange(n_max), len(x) - 1)] for x in f] for f in feats]
    feat, c, log_s = (
        torch.from_numpy(np.stack(xs).astype(np.float32)) for xs in zip(*padded, strict=True)
    )
    joints = decode(model(feat), c, log_s)  # (B, T, 17, 3)
    if model.cfg.flip_average:  # VideoPose3D's test-time augmentation: average with the mirror
        feat_m, c_m, _ = _flip(feat, c, joints)
        _, _, unmirrored = _flip(feat_m, c_m, decode(model(feat_m), c_m, log_s))
        joints = 0.5 * (joints + unmirrored)
    out = joints.numpy()
    return [out[b, : len(f[0])] for b, f in enumerate(feats)]


def lift(model: Lifter, u: np.ndarray, conf: np.ndarray) -> np.ndarray:
    """Lift one clip: ``u`` ``(T, 17, 2)``, ``conf`` ``(T, 17)`` to camera joints ``(T, 17, 3)``."""
    return lift_many(model, [u], [conf])[0]


def _flip(feat, c, joints):
    """Mirror a batch left/right about the camera's vertical plane (x -> -x, joints swapped):
    a free, exactly consistent augmentation."""
    perm = list(FLIP_PERM)
    x = feat[..., : 2 * NUM_JOINTS].unflatten(-1, (NUM_JOINTS, 2))[..., perm, :]
    x = x * torch.tensor([-1.0, 1.0])
    w = feat[..., 2 * NUM_JOINTS : 3 * NUM_JOINTS][..., perm]
    c = c * torch.tensor([-1.0, 1.0])
    feat = torch.cat([x.flatten(-2), w, c, feat[..., -1:]], dim=-1)
    return feat, c, joints[..., perm, :] * torch.tensor([-1.0, 1.0, 1.0])


# --- checkpoints --------------------------------------------------------------------------


def save_checkpoint(
    path: str | Path, model: Lifter, cfg: LifterConfig, extra: dict[str, Any] | None = None
) -> None:
    """Weights, the config as a plain dict, and ``extra`` (plain values: metrics, run id)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": model.state_dict(), "config": cfg.to_dict(), "extra": extra or {}}, path)


def load_checkpoint(path: str | Path) -> tuple[Lifter, LifterConfig, dict[str, Any]]:
    """The model (eval mode), its config and the checkpoint's ``extra``; ``weights_only``."""
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    cfg = LifterConfig.from_dict(ckpt["config"])
    model = Lifter(cfg)
    model.load_state_dict(ckpt["model"])
    return model.eval(), cfg, ckpt["extra"]


# --- world frame --------------------------------------------------------------------------

ANKLE_HEIGHT = 0.08  # m: the ankle joint's height over the floor when the foot is flat


def camera_to_world(
    joints_cam: np.ndarray, ankle_height: float = ANKLE_HEIGHT
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A gravity-aligned world frame for a lifted motion ``(T, 17, 3)`` (camera frame).

    Returns world joints ``(T, 17, 3)`` and the camera's R ``(3, 3)``, t ``(3,)`` with
    ``X_cam = R @ X_world + t``. World Y is up, the floor is Y = 0, the origin is under the
    root at frame 0, and world Z is the camera's viewing direction made horizontal.

    Up is the clip's mean ankle-to-shoulder direction (over a clip a person's body is
    upright on average, even when standing still, where a floor plane fitted to the ankles
    is undetermined), with the camera assumed to have zero roll (up has no camera-x
    component), so only the pitch is estimated; a sideways lean lasting the whole clip is
    therefore kept as a lean rather than absorbed into the camera. The floor is the lower
    decile of the lowest ankle's height over the frames, minus ``ankle_height``.
    """
    j = np.asarray(joints_cam, dtype=np.float64)
    i = JOINT_INDEX
    body = 0.5 * (j[:, i["left_shoulder"]] + j[:, i["right_shoulder"]]) - 0.5 * (
        j[:, i["left_ankle"]] + j[:, i["right_ankle"]]
    )  # (T, 3)
    body /= np.maximum(np.linalg.norm(body, axis=-1, keepdims=True), 1e-9)
    up = body.mean(0) * np.array([0.0, 1.0, 1.0])  # zero roll
    if np.linalg.norm(up) < 0.1 or up[1] > 0:  # no clear up, or "up" pointing down the image
        up = np.array([0.0, -1.0, 0.0])
    up /= np.linalg.norm(up)
    fwd = np.array([0.0, 0.0, 1.0]) - up[2] * up  # camera z, made horizontal
    fwd /= np.linalg.norm(fwd)
    R = np.stack([np.cross(up, fwd), up, fwd], axis=1)  # noqa: N806 - columns: world X, Y, Z
    heights = j[:, [i["left_ankle"], i["right_ankle"]]] @ up  # (T, 2)
    floor = np.percentile(heights.min(1), 10) - ankle_height
    r0 = root(j[0])
    t = r0 - (r0 @ up - floor) * up  # the world origin, in camera coordinates
    return (j - t) @ R, R, t
