"""A Gaussian prior of the training motions and its exact denoiser: the denoiser's skip
(``DenoiserConfig.skip = "gaussian"``, issue 17).

Model: the normalised features ``z`` ``(T, F)``, rotated into the principal axes ``U`` of their
channel covariance, are independent zero-mean stationary Gaussian processes in time, axis
``k`` with autocovariance ``r_k(lag)``. For ``x_t = sqrt(abar) z + sqrt(1 - abar) eps`` the
posterior mean of axis ``k`` over a window of ``T`` frames, with ``Sigma_k`` the Toeplitz
matrix of ``r_k`` and ``Sigma_k = V diag(d) V^T``, is

    E[z_k | x_t] = V diag(sqrt(abar) d / (abar d + 1 - abar)) V^T (x_t U)_k

(a Wiener filter per axis: EDM's scalar c_skip with the data's own covariance in place of one
variance), and its expected squared error per entry is the mean of
``d (1 - abar) / (abar d + 1 - abar)``: the scale of what is left for the network (EDM's
c_out). The skip passes x_t through at low noise, where the network must read it, and only
the motion-like part of it (smooth, with the channels' correlations) at high noise.

The statistics need only the motions the model is trained on (x0: mocap, or the lifter's
output), never 3D ground truth beyond them; ``fit`` estimates them, the denoiser keeps them
as buffers, so checkpoints carry them.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def fit_gaussian_prior(
    sequences: Sequence[torch.Tensor], max_lag: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Principal axes ``(F, F)`` (columns) and each axis's autocovariance ``(F, max_lag)`` of
    normalised feature sequences (each ``(T_i, F)``), about zero.

    The autocovariance is the biased estimate (sums over every clip's pairs divided by the
    total frame count), so every Toeplitz matrix built from it is positive semi-definite.
    """
    seqs = [s.double() for s in sequences if len(s)]
    if not seqs:
        raise ValueError("no sequences to fit a Gaussian prior to")
    frames = sum(len(s) for s in seqs)
    cov = sum(s.T @ s for s in seqs) / frames
    _, basis = torch.linalg.eigh(cov)  # ascending; the order does not matter
    acov = torch.zeros(basis.shape[1], max_lag, dtype=torch.float64)
    for s in seqs:
        y = s @ basis  # (T, K)
        n = len(y)
        spec = torch.fft.rfft(y, n=2 * n, dim=0)
        corr = torch.fft.irfft(spec.abs() ** 2, n=2 * n, dim=0)[: min(n, max_lag)]  # (lags, K)
        acov[:, : len(corr)] += corr.T
    return basis.float(), (acov / frames).float()


def toeplitz_eigen(acov: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigenvectors ``(K, n, n)`` and eigenvalues ``(K, n)`` (clamped at 0) of each axis's
    ``n``-frame temporal covariance, in float64."""
    lags = torch.arange(n, device=acov.device)
    idx = (lags[:, None] - lags[None, :]).abs()  # (n, n)
    sigma = acov.double()[:, idx]  # (K, n, n)
    d, v = torch.linalg.eigh(sigma)
    return v, d.clamp(min=0.0)


class GaussianDenoiser:
    """``E[z | x_t]`` under the prior, and the error it leaves; the eigen-decomposition of a
    window length is computed once and reused (keyed on the statistics' version)."""

    def __init__(self) -> None:
        self._cache: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    def _eigen(self, acov: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        key = (n, acov.device, acov.data_ptr(), acov._version)
        if key not in self._cache:
            if len(self._cache) > 16:
                self._cache.clear()
            v, d = toeplitz_eigen(acov[:, :n], n)
            self._cache[key] = (v.float(), d.float())
        return self._cache[key]

    def __call__(
        self, x: torch.Tensor, abar: torch.Tensor, basis: torch.Tensor, acov: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``x`` ``(B, T, F)`` noisy features, ``abar`` ``(B,)``: the posterior mean
        ``(B, T, F)`` and the root of its mean squared error per entry ``(B,)``."""
        n = x.shape[1]
        if n > acov.shape[1]:
            raise ValueError(f"{n} frames exceed the prior's {acov.shape[1]}")
        v, d = self._eigen(acov, n)  # (K, n, n), (K, n)
        a = abar.float()[:, None, None]  # (B, 1, 1)
        y = x.float() @ basis  # (B, T, K)
        coef = torch.einsum("btk,ktj->bjk", y, v)  # (B, n, K)
        dt = d.T[None]  # (1, n, K)
        gain = a.sqrt() * dt / (a * dt + 1.0 - a)
        z = torch.einsum("bjk,ktj->btk", coef * gain, v) @ basis.T
        err = (dt * (1.0 - a) / (a * dt + 1.0 - a)).mean(dim=(1, 2))
        return z, err.sqrt()
