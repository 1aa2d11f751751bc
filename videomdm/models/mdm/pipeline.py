"""The VideoMDM pipeline: a trained model with everything needed to sample from it.

``VideoMDM.from_checkpoint(path_or_state, device)`` bundles the denoiser (EMA weights, eval
mode), the feature normaliser, the diffusion, model and training configs of a checkpoint, and a
text encoder; ``generate`` samples motions from text, ``reconstruct`` samples the 3D motion of a
clip guided by its keypoints and camera under the checkpoint's own 2D loss.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from videomdm.models.mdm.config import DenoiserConfig, DiffusionConfig, GuidanceConfig, TrainConfig
from videomdm.models.mdm.data import training_motion
from videomdm.models.mdm.denoiser import Denoiser
from videomdm.models.mdm.sampling import cut_windows, generate, reconstruct, uncut_windows
from videomdm.models.mdm.text_encoder import TextEncoder
from videomdm.models.motion.cameras import world_to_camera
from videomdm.models.motion.features import Normalizer
from videomdm.models.motion.sample import MotionSample

NO_CAPTION = "a person moves"  # what an uncaptioned clip is conditioned on


@dataclass(frozen=True)
class Reconstruction:
    """A reconstructed motion and the camera that sees it.

    With a body-size gauged model the world is the gauged one (``motion.sample.to_body_size``:
    joints and camera translation scaled together), so ``t`` differs from the input's.
    """

    joints: np.ndarray  # (T, 17, 3) world, metres, Y up
    R: np.ndarray  # (3, 3) world -> camera  # noqa: N815
    t: np.ndarray  # (3,)

    def camera_frame(self) -> np.ndarray:
        """The motion in the camera frame ``(T, 17, 3)``."""
        return world_to_camera(self.joints.astype(np.float64), self.R, self.t)

    def in_world_of(self, sample: MotionSample) -> np.ndarray:
        """The same camera-frame motion expressed in ``sample``'s world (same ``R``)."""
        return ((self.camera_frame() - sample.t) @ np.asarray(sample.R)).astype(np.float32)


@dataclass
class VideoMDM:
    """A trained VideoMDM, ready to sample."""

    denoiser: Denoiser
    normalizer: Normalizer
    diffusion: DiffusionConfig
    train_config: TrainConfig
    name: str = ""  # the run id or checkpoint name it came from
    text_encoder: TextEncoder | None = None

    @classmethod
    def from_checkpoint(
        cls,
        path_or_state: str | os.PathLike[str] | dict[str, Any],
        device: str | torch.device = "cpu",
        name: str | None = None,
    ) -> VideoMDM:
        """Load a training checkpoint (a file read with ``weights_only=True``, so a file from
        elsewhere cannot run code, or the state dict itself); the EMA weights are used."""
        if isinstance(path_or_state, dict):
            state, default_name = path_or_state, ""
        else:
            state = torch.load(path_or_state, map_location="cpu", weights_only=True)
            default_name = Path(path_or_state).stem
        # checkpoints from before the rigid-bone projection sampled without it
        diffusion = DiffusionConfig(**({"rigid_bones": False} | state["diffusion_config"]))
        model = Denoiser(DenoiserConfig(**state["model_config"]), diffusion)
        model.load_state_dict(state["ema"])
        model.to(device).eval()
        return cls(
            model,
            Normalizer.from_state_dict(state["normalizer"]),
            diffusion,
            # checkpoints from before the body-size gauge existed did not use it
            TrainConfig(**({"size_gauge": False} | state["train_config"])),
            name if name is not None else default_name,
        )

    @property
    def device(self) -> torch.device:
        return next(self.denoiser.parameters()).device

    @property
    def fps(self) -> float:
        return self.train_config.fps

    def condition(self, texts: Sequence[str]) -> torch.Tensor | None:
        """Text embeddings ``(N, 384)`` on the model's device (None for unconditional models)."""
        if self.denoiser.cfg.cond_mode != "text":
            return None
        if self.text_encoder is None:
            self.text_encoder = TextEncoder(str(self.device))
        texts = [t or NO_CAPTION for t in texts]
        return torch.from_numpy(self.text_encoder.encode(texts)).to(self.device)

    def generate(
        self,
        text: str | Sequence[str],
        n: int = 1,
        seconds: float = 4.0,
        steps: int = 50,
        guidance_scale: float = 2.5,
        seed: int = 0,
    ) -> np.ndarray:
        """Sample motions from text.

        Args:
            text: one prompt for all ``n`` samples, or one prompt per sample.
            n: number of samples (ignored when ``text`` is a list).
            seconds: length of each motion, at the model's fps.
            steps: sampling steps.
            guidance_scale: classifier-free guidance scale (1: none).
            seed: seeds the initial noise.

        Returns:
            ``(n, T, 17, 3)`` canonical joints in metres (Y up, frame 0 at the origin facing +Z).
        """
        texts = [text] * n if isinstance(text, str) else list(text)
        if not texts or seconds <= 0:
            raise ValueError(f"n must be >= 1 and seconds > 0, got n={len(texts)}, {seconds=}")
        frames = max(2, round(seconds * self.fps))
        cond = self.condition(texts)
        return generate(
            self.denoiser,
            self.normalizer,
            self.diffusion,
            cond,
            len(texts),
            frames,
            steps,
            guidance_scale,
            seed,
            self.train_config.amp,
        )

    def reconstruct(
        self, sample: MotionSample, guidance: GuidanceConfig = GuidanceConfig(), seed: int = 0
    ) -> Reconstruction:
        """The 3D motion of a clip whose projection follows its keypoints.

        Args:
            sample: the clip: rough 3D (the lifter's world joints, the start for
                ``guidance.strength < 1``), keypoints, confidences, camera and caption.
            guidance: how the keypoints guide sampling; the 2D loss is the one the model was
                trained with (depth power, lambdas).
            seed: seeds the noise.

        Returns:
            The motion in the model's gauge (see ``Reconstruction``), windows of the training
            length sampled as one batch.
        """
        cfg = self.train_config
        # the (lifted) clip prepared as a lifted x0 is for training (keypoint-consistent,
        # gauged, smoothed): the windows' canonical frames and the start for strength < 1
        gauged = training_motion(sample, cfg, lifted=True)
        win = cut_windows(
            gauged.joints, gauged.u, gauged.conf, gauged.R, gauged.t, cfg.window, cfg.fps
        )
        cond = self.condition([sample.text])
        canon = reconstruct(
            self.denoiser,
            self.normalizer,
            self.diffusion,
            cfg,
            win,
            None if cond is None else cond[0],
            guidance,
            seed,
        )
        joints = uncut_windows(canon, win, np.asarray(gauged.R), np.asarray(gauged.t))
        return Reconstruction(joints, np.asarray(gauged.R), np.asarray(gauged.t))
