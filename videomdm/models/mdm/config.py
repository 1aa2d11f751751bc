"""Every knob of the motion diffusion model, as frozen dataclasses saved in each checkpoint.

One place to read what can be set: the network (``DenoiserConfig``), the noise schedule
(``DiffusionConfig``), training (``TrainConfig``) and reconstruction guidance
(``GuidanceConfig``). This module imports neither torch nor numpy, so the command line can
offer the valid choices (the ``Literal`` types below) without loading a model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from videomdm.errors import UserError
from videomdm.models.motion.layout import FEATURE_DIM

CondMode = Literal["text", "label", "none"]
Activation = Literal["gelu", "relu"]
AmpDtype = Literal["bf16", "none"]
Schedule = Literal["cosine", "linear"]
Prediction = Literal["x0", "epsilon", "v"]
Supervision = Literal["2d", "3d"]
GuidanceKind = Literal["dps", "adam"]
SkipMode = Literal["none", "learned", "gaussian"]

COND_MODES: tuple[str, ...] = get_args(CondMode)
ACTIVATIONS: tuple[str, ...] = get_args(Activation)
AMP_DTYPES: tuple[str, ...] = get_args(AmpDtype)
SCHEDULES: tuple[str, ...] = get_args(Schedule)
PREDICTIONS: tuple[str, ...] = get_args(Prediction)
SUPERVISIONS: tuple[str, ...] = get_args(Supervision)
GUIDANCE_KINDS: tuple[str, ...] = get_args(GuidanceKind)
SKIP_MODES: tuple[str, ...] = get_args(SkipMode)


def check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    """ValueError naming the setting and its valid values when ``value`` is not one of them."""
    if value not in choices:
        raise UserError(f"{name} must be one of {choices}, got {value!r}")


@dataclass(frozen=True)
class DenoiserConfig:
    """The transformer encoder (``denoiser.Denoiser``); presets in ``videomdm.config``."""

    n_feats: int = FEATURE_DIM
    width: int = 512
    n_layers: int = 8
    n_heads: int = 4
    ff_dim: int = 1024
    dropout: float = 0.1
    activation: Activation = "gelu"
    norm_first: bool = True  # pre-norm trains stably without warm-up (MDM itself is post-norm)
    cond_mode: CondMode = "text"
    text_dim: int = 384  # all-MiniLM-L6-v2
    num_labels: int = 0  # vocabulary size when cond_mode == "label"
    cond_drop_prob: float = 0.1
    max_frames: int = 1024
    # Research option (issue 17, the ladder): "learned" makes the output
    # x0_hat = a(t) * S(x_t) + F(x_t, t, c), with a a per-(step, channel) parameter initialised
    # at sqrt(abar_t), S a fixed temporal Gaussian of sigma ``skip_smoothing`` frames (0: none)
    # and F the transformer, its output projection zero-initialised. Only for x0 prediction.
    # "gaussian": x0_hat = G(x_t, t) + c(t) F, G the posterior mean under a Gaussian model of
    # the training motions, c(t) its error (``mdm/prior.py``)
    skip: SkipMode = "none"
    skip_smoothing: float = 0.0
    skip_max_t: int = 0  # the skip only below this step (a(t) = 0 from it on); 0: every step

    def __post_init__(self) -> None:
        check_choice("cond_mode", self.cond_mode, COND_MODES)
        check_choice("activation", self.activation, ACTIVATIONS)
        check_choice("skip", self.skip, SKIP_MODES)
        if self.skip_smoothing < 0:
            raise UserError(f"skip_smoothing must be >= 0, got {self.skip_smoothing}")
        if self.skip_max_t < 0:
            raise UserError(f"skip_max_t must be >= 0 (0: every step), got {self.skip_max_t}")
        if self.cond_mode == "label" and self.num_labels < 1:
            raise UserError("cond_mode 'label' needs num_labels >= 1")
        if self.width % self.n_heads:
            raise UserError(f"width {self.width} is not divisible by n_heads {self.n_heads}")
        if not 0.0 <= self.cond_drop_prob < 1.0:
            raise UserError(f"cond_drop_prob must be in [0, 1), got {self.cond_drop_prob}")


@dataclass(frozen=True)
class DiffusionConfig:
    """The noise schedule and what the network predicts (``schedulers.Scheduler``)."""

    num_train_steps: int = 50
    schedule: Schedule = "cosine"
    prediction: Prediction = "x0"  # what the network outputs
    cosine_s: float = 0.008
    # sampling projects each step's x0_hat onto rigid bones (``features.rigid_features``),
    # as image models clip x0_hat to the pixel range; generation and reconstruction alike
    rigid_bones: bool = True

    def __post_init__(self) -> None:
        check_choice("schedule", self.schedule, SCHEDULES)
        check_choice("prediction", self.prediction, PREDICTIONS)
        if self.num_train_steps < 1:
            raise UserError(f"num_train_steps must be >= 1, got {self.num_train_steps}")


@dataclass(frozen=True)
class TrainConfig:
    """Training (``trainer.Trainer``): data windows, optimiser, loss weights, EMA, numerics."""

    supervision: Supervision = "2d"
    window: int = 60  # frames per training window (2 s at 30 fps)
    batch_size: int = 32  # per process
    steps: int = 2000
    lr: float = 2e-4
    warmup_steps: int = 100
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    ema_decay: float = 0.995
    depth_power: float = 2.0  # w = mean depth ** p; 2 makes the 2D loss track the 3D error
    min_depth: float = 0.1
    lambda_pos: float = 7.0  # the paper's lambda
    # The paper's 7 * 50 on the 2D velocity term makes any reading of x_t pass keypoint-level
    # jitter into x0_hat, which that weight punishes, so the network learns one smooth motion
    # per prompt and ignores its input (the ladder, docs/evaluation.md: R1 x0 error at t = 2
    # 119 -> 89 mm, within-prompt diversity 0.039 -> 0.217 with 7, bodies as rigid as R0's)
    lambda_vel: float = 7.0
    lambda_ray: float = 0.0  # optional ray consistency
    lambda_redundant: float = 0.2  # redundant channels agree with the predicted positions
    # 2D only, optional: rigid bones keep their length over a window (``rigid_bone_loss``)
    lambda_bone: float = 0.0
    # Gaussian sigma (frames) applied to x0 over time. The lifter's jitter lies along the camera
    # ray, so unsmoothed x0 tells the network where the camera is and it learns to move joints
    # along the unseen depth freely (docs/evaluation.md); 0 keeps x0 as it is
    x0_smoothing: float = 3.0
    # 2D only: before smoothing, each lifted x0 is made consistent with its keypoints: its root
    # depth set from the keypoints' 2D size (low-passed at this many Hz) and every joint
    # snapped to its keypoint's camera ray; 0: x0 as lifted
    x0_keypoints_hz: float = 0.0
    # Lifted samples (2D supervision) are put in the body-size gauge (``to_body_size``): size is
    # unseen in 2D, so without it the model inherits the lifter's body size and exaggerates it
    # (docs/evaluation.md). Reconstruction then gauges its input the same way.
    size_gauge: bool = True
    # The release's t* schedule (DESIGN.md; 0: off, the release trains with 12 of 50 steps and
    # 4 buckets): a share of batches denoise a short chain from x0 noised just above t*, taking
    # the loss at one step in each bucket, so below t* the network never sees x0 near-clean
    t_star: int = 0
    t_star_buckets: int = 4
    fps: float = 30.0  # frame rate of the training motions (the pipeline resamples to it)
    amp: AmpDtype = "bf16"  # autocast dtype where the device supports it
    seed: int = 0
    log_every: int = 50
    checkpoint_every: int = 500

    def __post_init__(self) -> None:
        check_choice("supervision", self.supervision, SUPERVISIONS)
        check_choice("amp", self.amp, AMP_DTYPES)
        if self.window < 2 or self.batch_size < 1 or self.steps < 0:
            raise UserError("window >= 2, batch_size >= 1 and steps >= 0 are required")
        if self.t_star < 0 or self.t_star_buckets < 2:
            raise UserError(
                f"t_star must be >= 0 and t_star_buckets >= 2, got {self.t_star}, "
                f"{self.t_star_buckets}"
            )

    def weights(self) -> dict[str, float]:
        """The loss terms and their lambdas, the one place they are chosen."""
        if self.supervision == "3d":
            return {"x0_mse": 1.0, "joints_3d": 1.0, "vel_3d": 1.0}
        w = {
            "reproj_pos": self.lambda_pos,
            "reproj_vel": self.lambda_vel,
            "redundant": self.lambda_redundant,
        }
        w |= {"ray": self.lambda_ray} if self.lambda_ray else {}
        return w | ({"bone": self.lambda_bone} if self.lambda_bone else {})


@dataclass(frozen=True)
class GuidanceConfig:
    """How reconstruction follows the keypoints.

    ``dps`` (diffusion posterior sampling, Chung et al. 2023): after each DDIM step, x_t moves
    down the gradient of the 2D loss of x0_hat(x_t) *through the denoiser*, by ``dps_scale``
    / sqrt(loss) per window; the network's Jacobian keeps the correction on the motions it
    knows, so depth and smoothness come from the prior. ``adam``: ``iters`` Adam steps on
    x0_hat itself per step, and ``final_iters`` on the result; it fits the 2D more tightly but
    moves every feature channel, the unseen ones too (jitter). The 2D loss itself (depth power,
    lambdas) is the checkpoint's training loss.
    """

    kind: GuidanceKind = "dps"
    # 1: start from noise; < 1: from the clip's rough 3D, prepared as the model's x0 was
    # (``data.training_motion``), noised this far. On the ladder's weak-lifter rung 1 / 0.5 /
    # 0.3 scored 210 / 146 / 143 mm on the weak lifter's views (its own 225), 198 / 102 / 96
    # on the in-domain lifter's (77): the prepared clip itself scores 131.5 and 76.5
    strength: float = 0.5
    steps: int = 50  # DDIM steps over the full schedule
    # dps: step on x_t, normalised features per sqrt(loss); None: the model's, 3 for a model
    # that reads x_t (a skip: 10 diverges, 0.3 / 1 / 3 scored 173 / 170 / 163 mm on the
    # ladder's R1), 10 for one without (it barely responds to x_t; tuned at 10)
    dps_scale: float | None = None
    # dps: the move's RMS at most this times the step's noise level (0: uncapped). Without it
    # the ladder's R4 model diverged at scale 3 (joints 1e12 m); with 1.0 / 0.3 / 0.1 its
    # acceleration error was 181 / 118 / 44 (MPJPE 311 each); on R1 it never binds
    dps_max_step: float = 0.3
    iters: int = 10  # adam: steps on x0_hat per denoising step
    lr: float = 0.05  # adam: in normalised feature units
    final_iters: int = 50  # adam: extra refinement of the last x0
    guidance_scale: float = 1.0  # classifier-free guidance on the condition
    amp: AmpDtype = "bf16"  # autocast for the denoiser (the guidance's own gradients stay fp32)

    def __post_init__(self) -> None:
        if not 0.0 < self.strength <= 1.0:
            raise UserError(f"strength must be in (0, 1], got {self.strength}")
        check_choice("guidance kind", self.kind, GUIDANCE_KINDS)
        if self.dps_max_step < 0:
            raise UserError(f"dps_max_step must be >= 0 (0: uncapped), got {self.dps_max_step}")
