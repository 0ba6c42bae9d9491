"""SSIM and PSNR between a generated and a real frame, and the masked variants (Mask-SSIM, Mask-PSNR).

SSIM follows Wang et al. 2004 exactly as scikit-image's
``structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=L)``:
an 11 x 11 Gaussian window (sigma 1.5, truncated at 3.5 sigma), K1 = 0.01, K2 = 0.03, population (not sample)
variances, the SSIM map averaged over the pixels at least 5 px from every border (scikit-image crops that band
because its filter there sees padding), computed per channel and averaged over channels. ``data_range`` L is
255 for uint8 images; for float images the caller says which range the pixels live in (1.0 for [0, 1], 2.0 for
[-1, 1]) - guessing it from the pixel values would make scores depend on image content.

PSNR is ``10 log10(L^2 / MSE)`` with the MSE over all pixels and channels (scikit-image's
``peak_signal_noise_ratio``); identical images give ``inf``.

Mask-SSIM / Mask-PSNR (REMOT Table 2-4, "masking the background of the image according to the human parsing
map"): both images are multiplied by the binary person mask - background pixels set to 0 in the generated AND
the real frame - and then the ordinary full-image SSIM / PSNR is computed. This is the convention of the
evaluation code that introduced Mask-SSIM for person generation (Ma et al. 2017 PG2; the public
Deformable-GAN / PATN ``getMetrics`` scripts: ``create_masked_image`` = ``image * mask[..., None]``, then the
same ``ssim_score`` on the masked pairs). REMOT and C2F-FWN did not publish their evaluation code (C2F-FWN
issue #6: "SSIM and PSNR are evaluated using scikit"), so this is the documented community convention, not
their exact script. Two deliberate choices: the mask is the person mask (parsing label != background), and
the data range stays fixed (255 for uint8) instead of those scripts' per-image ``max - min``, so scores do not
depend on how bright the frame happens to be.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

K1, K2 = 0.01, 0.03
SIGMA = 1.5
TRUNCATE = 3.5  # scipy.ndimage.gaussian_filter's default, used by scikit-image
RADIUS = int(TRUNCATE * SIGMA + 0.5)  # 5 -> an 11 x 11 window
WINDOW = 2 * RADIUS + 1


def _check_pair(generated: np.ndarray, real: np.ndarray, data_range: float | None) -> float:
    """Validate two H x W x C images of one shape and dtype; return the data range to use."""
    generated, real = np.asarray(generated), np.asarray(real)
    if generated.shape != real.shape:
        raise ValueError(f"generated {generated.shape} and real {real.shape} images differ in shape")
    if generated.ndim != 3 or generated.shape[2] not in (1, 3):
        raise ValueError(f"expected H x W x C images with C in (1, 3), got shape {generated.shape}")
    if generated.dtype != real.dtype:
        raise ValueError(f"generated ({generated.dtype}) and real ({real.dtype}) images differ in dtype")
    if data_range is not None:
        return float(data_range)
    if generated.dtype == np.uint8:
        return 255.0
    raise ValueError(f"data_range is required for {generated.dtype} images: pass 1.0 for pixels in [0, 1] "
                     "or 2.0 for pixels in [-1, 1]")


def _gaussian_window(sigma: float = SIGMA) -> torch.Tensor:
    """The normalised 1-D Gaussian (float64; length 11 for sigma 1.5) that scipy's gaussian_filter applies."""
    radius = int(TRUNCATE * sigma + 0.5)
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float64)
    weights = torch.exp(-0.5 * (offsets / sigma) ** 2)
    return weights / weights.sum()


def _blur_valid(x: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian filter of (C, 1, H, W) without padding: returns (C, 1, H - 2r, W - 2r).

    Only positions whose window lies fully inside the image are computed - exactly the area scikit-image
    averages after cropping, so no padding convention can change the result.
    """
    size = window.numel()
    x = F.conv2d(x, window.view(1, 1, size, 1))
    return F.conv2d(x, window.view(1, 1, 1, size))


def ssim_map(generated: np.ndarray, real: np.ndarray, data_range: float | None = None,
             sigma: float = SIGMA) -> np.ndarray:
    """Per-pixel, per-channel SSIM of the interior: float64 (H - 2r, W - 2r, C), values in [-1, 1].

    ``generated`` and ``real``: H x W x C (C = 1 or 3) arrays of one dtype; ``data_range`` as in the module doc.
    ``sigma``: the Gaussian window's (params ``evaluate.ssim_sigma``); the default 1.5 is Wang et al. 2004's
    (11 x 11, r = 5), scikit-image's ``gaussian_weights=True`` setting. Pixel (i, j) of the map is the SSIM of
    the window centred on image pixel (i + r, j + r), r = round(3.5 sigma).
    """
    data_range = _check_pair(generated, real, data_range)
    height, width = np.asarray(generated).shape[:2]
    window = _gaussian_window(sigma)
    if height < window.numel() or width < window.numel():
        raise ValueError(f"SSIM needs images of at least {window.numel()} x {window.numel()} pixels (sigma "
                         f"{sigma}), got {height} x {width}")
    x = torch.from_numpy(np.asarray(generated, dtype=np.float64)).permute(2, 0, 1).unsqueeze(1)
    y = torch.from_numpy(np.asarray(real, dtype=np.float64)).permute(2, 0, 1).unsqueeze(1)
    mu_x, mu_y = _blur_valid(x, window), _blur_valid(y, window)
    var_x = _blur_valid(x * x, window) - mu_x**2
    var_y = _blur_valid(y * y, window) - mu_y**2
    cov_xy = _blur_valid(x * y, window) - mu_x * mu_y
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    numerator = (2 * mu_x * mu_y + c1) * (2 * cov_xy + c2)
    denominator = (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
    return (numerator / denominator).squeeze(1).permute(1, 2, 0).numpy()


def ssim(generated: np.ndarray, real: np.ndarray, data_range: float | None = None, sigma: float = SIGMA) -> float:
    """Mean SSIM (Wang et al. 2004, scikit-image conventions, see module doc) over pixels and channels.

    Returns a float in [-1, 1]; 1 for identical images.
    """
    return float(ssim_map(generated, real, data_range, sigma).mean())


def psnr(generated: np.ndarray, real: np.ndarray, data_range: float | None = None) -> float:
    """PSNR in dB, ``10 log10(data_range^2 / MSE)`` over all pixels and channels; ``inf`` if identical."""
    data_range = _check_pair(generated, real, data_range)
    mse = float(np.mean((np.asarray(generated, np.float64) - np.asarray(real, np.float64)) ** 2))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(data_range**2 / mse)


def apply_person_mask(image: np.ndarray, person_mask: np.ndarray) -> np.ndarray:
    """``image`` (H, W, C) with every pixel outside ``person_mask`` set to 0; same dtype.

    ``person_mask``: (H, W) bool, or numbers where > 0 means person (e.g. ``parsing_labels != 0``, or a 0/255
    mask image).
    """
    image, person_mask = np.asarray(image), np.asarray(person_mask)
    if person_mask.ndim == 3 and person_mask.shape[2] == 1:
        person_mask = person_mask[..., 0]
    if person_mask.shape != image.shape[:2]:
        raise ValueError(f"person mask {person_mask.shape} does not match the image {image.shape[:2]}")
    return image * (person_mask > 0)[..., None].astype(image.dtype)


def mask_ssim(generated: np.ndarray, real: np.ndarray, person_mask: np.ndarray,
              data_range: float | None = None, sigma: float = SIGMA) -> float:
    """Mask-SSIM: ``ssim`` of both images with the background (outside ``person_mask``) set to 0."""
    return ssim(apply_person_mask(generated, person_mask), apply_person_mask(real, person_mask), data_range, sigma)


def mask_psnr(generated: np.ndarray, real: np.ndarray, person_mask: np.ndarray,
              data_range: float | None = None) -> float:
    """Mask-PSNR: ``psnr`` of both images with the background (outside ``person_mask``) set to 0.

    The MSE is still averaged over the whole frame (background pixels contribute 0 error), as in the
    reference scripts, so Mask-PSNR >= PSNR on the same pair.
    """
    return psnr(apply_person_mask(generated, person_mask), apply_person_mask(real, person_mask), data_range)
