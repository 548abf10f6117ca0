"""From a dataset fingerprint to a plan: the preprocessing and training choices a run makes.

The rules follow nnU-Net's (median spacing, anisotropy handling, patch from median shape,
depth from patch size) with additions for whole-image classification on a CPU: the crop is
sized from the measured lung extent (chest CT) or foreground extent (other 3D modalities),
and a voxel budget coarsens the in-plane spacing when the crop would be too large to train
in minutes. What depends on the modality (settled in the fingerprint, see `modality`):

* CT: lung window, lung masking and a crop to the lungs when lung fields are found (chest
  CT), else the body; segmentation z-scores with the dataset's statistics.
* MR and other 3D images without a physical unit: each image z-scored on its own
  foreground (never a HU window), a crop to the foreground, non-local-means denoising when
  the measured noise is high.
* X-ray and other one-slice images: planned as 2D (a 2D network, ``[1, y, x]`` inputs),
  each image's own percentiles mapped to [0, 1], the whole image kept.

3D classification reorients every image to `CANONICAL_ORIENTATION` first. Every choice is
written with the reason in ``notes``; a person can edit ``plan.json`` and training,
evaluation and prediction use what it says.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

import medsight
from medsight.errors import InputError
from medsight.imaging.preprocess.augmentation import AugmentSpec, augment_preset
from medsight.imaging.preprocess.contract import PreprocessContract
from medsight.imaging.preprocess.fingerprint import DatasetFingerprint
from medsight.imaging.preprocess.intensity import WINDOW_PRESETS_HU
from medsight.imaging.preprocess.modality import normalisation_scheme
from medsight.runs.atomic import write_text_atomic

#: voxels per classification input that train in minutes on two CPU cores
CLASSIFY_VOXEL_BUDGET = 320_000
#: pixels per 2D classification input (128 x 128, MedMNIST's larger size): a few hundred
#: images train from scratch in minutes on two CPU cores
CLASSIFY_PIXEL_BUDGET_2D = 16_384
#: orientation of 3D classification inputs: DICOM's patient axes (x to the patient's left,
#: y to posterior, z to superior), what an axial DICOM series already is
CANONICAL_ORIENTATION = "LPS"
#: clip of MR-like images (percentiles of each image's foreground)
MR_PERCENTILES = (0.5, 99.99)
#: images whose estimated noise std exceeds this share of their mean foreground intensity
#: (an SNR under 10) are denoised
DENOISE_NOISE_RATIO = 0.1
#: voxels per segmentation patch on CPU (nnU-Net's GPU default is ~128^3): small patches
#: mean many steps per minute, which on two cores matters more than context
SEGMENT_PATCH_BUDGET = 32 * 64 * 64
SEGMENT_BASE_FILTERS = 16
ANISOTROPY_RATIO = 3.0
CNN_WIDTHS = (16, 32, 64, 128, 256)


class Plan(BaseModel):
    """What `medsight train`/`demo` will do with a dataset; saved as ``plan.json``."""

    model_config = ConfigDict(frozen=True, extra="forbid", protected_namespaces=())

    task: Literal["classify", "segment"]
    created_by: str
    preprocess: PreprocessContract
    model_name: str
    network_depth: int
    #: 2 for one-slice images (inputs ``[1, y, x]``, a 2D network), else 3
    spatial_dims: Literal[2, 3] = 3
    batch_size: int
    patch_size: tuple[int, int, int] | None = None
    #: further network arguments (segmentation: depth and base filters)
    model_kwargs: dict[str, int | float] = {}
    #: training-time augmentation (default: what plans made before this field did)
    augment: AugmentSpec = augment_preset("flip+shift")
    notes: list[str]
    fingerprint: DatasetFingerprint


def _round_up(n: float, multiple: int) -> int:
    return max(multiple, int(math.ceil(n / multiple)) * multiple)


def _available_memory_bytes() -> int:
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 4 * 1024**3


def cnn_training_bytes_per_sample(shape: tuple[int, ...], depth: int) -> int:
    """Rough activation memory of one `lungct-cnn` training sample (fp32, kept for backward)."""
    voxels = math.prod(shape)
    pooled = 2 ** len(shape)
    total = 0
    for level in range(depth):
        # conv, norm and ReLU outputs at this level, then the pooled map
        total += CNN_WIDTHS[level] * voxels * 3
        voxels = max(1, voxels // pooled)
        total += CNN_WIDTHS[level] * voxels
    return total * 4 * 2  # values and their gradients


def _target_spacing(fp: DatasetFingerprint, notes: list[str]) -> tuple[float, float, float]:
    spacing = list(fp.spacing_mm.median)
    if max(spacing) / min(spacing) > ANISOTROPY_RATIO:
        axis = spacing.index(max(spacing))
        spacing[axis] = fp.spacing_mm.p10[axis]
        notes.append(f"anisotropic spacing: axis {axis} uses the 10th percentile, as nnU-Net does")
    notes.append(f"target spacing = median spacing {tuple(round(s, 3) for s in spacing)} mm")
    return round(spacing[0], 3), round(spacing[1], 3), round(spacing[2], 3)


def _detector_depth(shape: tuple[int, ...], notes: list[str]) -> int:
    """Levels of `lungct-cnn` for images without lung masking: the last map keeps ~4 voxels a side.

    Its global max pooling then pools a local detector's strongest response. Measured on the
    synthetic MR set (100 scans, a focus of 2-3 voxels radius): 5 levels stayed at chance
    for 10 epochs, 3 levels reached a test AUC of 0.95 in 3.
    """
    depth = max(1, min(len(CNN_WIDTHS), round(math.log2(max(2.0, min(shape) / 4)))))
    notes.append(
        f"depth {depth}: the deepest map keeps about 4 voxels a side, so the network stays a "
        "local detector whose strongest response is pooled (small foci, no lung mask)"
    )
    return depth


def _one_slice(fp: DatasetFingerprint) -> bool:
    return fp.shape_vox.max[0] == 1


def _intensity(fp: DatasetFingerprint, lung_window: bool, notes: list[str]) -> dict[str, object]:
    """The normalisation; ``lung_window``: chest CT with lung fields gets the lung window."""
    scheme = normalisation_scheme(fp.modality, _one_slice(fp))
    if scheme == "image_zscore":
        notes.append(
            f"{fp.modality}: no physical unit and a scale that differs from scan to scan: each "
            "image is clipped to the 0.5-99.99th percentile of its own foreground (the high "
            "end only trims isolated outliers: a small bright lesion is a few hundredths of a "
            "percent of a head), z-scored with its foreground mean/std, background set to 0 "
            "(nnU-Net's MR scheme); no HU window"
        )
        return {"normalisation": "image_zscore", "percentiles": MR_PERCENTILES}
    if scheme == "image_percentile":
        notes.append(
            f"{fp.modality}: exposure and detector differ from image to image: each image's own "
            "0.5-99.5th percentiles are mapped to [0, 1]"
        )
        return {"normalisation": "image_percentile", "percentiles": (0.5, 99.5)}
    if fp.modality == "CT" and lung_window and fp.lung_extent_mm is not None:
        notes.append("CT with lung fields: lung window (-1000, 400) HU scaled to [0, 1]")
        return {"normalisation": "window", "window_hu": WINDOW_PRESETS_HU["lung"]}
    low, high = fp.foreground_percentiles_hu["p0.5"], fp.foreground_percentiles_hu["p99.5"]
    notes.append(
        "clip to the 0.5-99.5th percentile of foreground intensities, then z-score with the "
        "foreground mean/std (nnU-Net's CT scheme)"
    )
    return {
        "normalisation": "zscore",
        "window_hu": (low, high),
        "mean": fp.foreground_mean,
        "std": max(fp.foreground_std, 1e-3),
    }


def _modality_note(fp: DatasetFingerprint, notes: list[str]) -> None:
    note = f"modality {fp.modality} ({fp.modality_source or 'DICOM header'})"
    if len(fp.modality_counts) > 1:
        note += f"; the sample mixes {fp.modality_counts}: all get {fp.modality}'s scheme"
    notes.append(note)


def _denoiser(fp: DatasetFingerprint, notes: list[str]) -> dict[str, object]:
    if fp.modality == "CT" or fp.noise_ratio is None:
        notes.append("no denoising (set denoise to gaussian, median, bilateral or nl_means)")
        return {"denoise": "none"}
    if fp.noise_ratio <= DENOISE_NOISE_RATIO:
        notes.append(
            f"no denoising: estimated noise is {fp.noise_ratio:.1%} of the mean foreground "
            f"intensity (nl_means above {DENOISE_NOISE_RATIO:.0%})"
        )
        return {"denoise": "none"}
    notes.append(
        f"non-local means denoising (h = 0.8 x the noise std, 3-voxel patches): estimated "
        f"noise is {fp.noise_ratio:.1%} of the mean foreground intensity"
    )
    params = {"h_factor": 0.8, "patch_size": 3.0, "patch_distance": 3.0}
    return {"denoise": "nl_means", "denoise_params": params}


def _classify_plan(
    fp: DatasetFingerprint, notes: list[str], voxel_budget: int = CLASSIFY_VOXEL_BUDGET
) -> dict[str, object]:
    _modality_note(fp, notes)
    if _one_slice(fp):
        return _classify_plan_2d(fp, notes)
    if fp.orientation is not None:
        notes.append(
            f"reoriented to {fp.orientation} before resampling (axis flips and permutations, no "
            "interpolation), so every image shows the anatomy along the same axes"
        )
    spacing = _target_spacing(fp, notes)
    is_ct = fp.modality == "CT"
    lungs = fp.lung_extent_mm if is_ct else None
    crop_to: Literal["lungs", "body", "foreground"]
    if lungs is not None:
        extent, crop_to = lungs.max, "lungs"
    elif not is_ct and fp.foreground_extent_mm is not None:
        extent, crop_to = fp.foreground_extent_mm.max, "foreground"
    else:
        extent, crop_to = fp.extent_mm.median, "body"
    notes.append(
        f"crop to the {crop_to}: largest measured extent {tuple(round(e) for e in extent)} mm + 5%"
    )
    if lungs is not None:
        notes.append("chest CT: voxels outside the lung fields are set to air")

    def shape_at(sp: tuple[float, float, float]) -> tuple[int, int, int]:
        z, y, x = (_round_up(e * 1.05 / s, 8) for e, s in zip(extent, sp, strict=True))
        return z, y, x

    shape = shape_at(spacing)
    if math.prod(shape) > voxel_budget:
        factor = (math.prod(shape) / voxel_budget) ** 0.5
        spacing = (spacing[0], spacing[1] * factor, spacing[2] * factor)
        shape = shape_at(spacing)
        notes.append(
            f"crop over the {voxel_budget} voxel budget: in-plane spacing coarsened by "
            f"{factor:.2f}x"
        )
    if lungs is not None or is_ct:
        depth = max(1, min(len(CNN_WIDTHS), int(math.log2(min(shape)))))
    else:
        depth = _detector_depth(shape, notes)
    per_sample = cnn_training_bytes_per_sample(shape, depth)
    fits = max(1, _available_memory_bytes() // 4 // per_sample)
    # few cases: small batches give more updates per epoch
    cap = max(2, min(16, fp.n_cases // 75))
    batch = int(min(fits, cap))
    notes.append(f"input {shape} voxels, depth {depth}, batch {batch} (memory allows {fits})")
    augment = augment_preset("flip+shift" if is_ct else "mr")
    notes.append(f"augmentation {augment.name!r}")
    network: dict[str, int | float] = {"stem_stride": 2, "dropout": 0.0} if is_ct else {}
    if network:
        notes.append(
            "CT: the first convolution strided (stride 2) instead of pooled: about 2x the "
            "training samples/s at the same input, and it learned at least as fast"
        )
        notes.append(
            "CT: no dropout in the head: on the demo's scans benign-vs-normal AUC after 25 "
            "epochs was higher without it in each of 3 seeds, at the same cost"
        )
    return {
        "preprocess": PreprocessContract(
            spacing_mm=spacing,
            orientation=fp.orientation,
            shape=shape,
            crop_to=crop_to,
            mask_outside_lungs=lungs is not None,
            modality=fp.modality,
            **_denoiser(fp, notes),  # type: ignore[arg-type]
            **_intensity(fp, True, notes),  # type: ignore[arg-type]
        ),
        "model_name": "lungct-cnn",
        "network_depth": depth,
        "model_kwargs": network,
        "spatial_dims": 3,
        "batch_size": batch,
        "augment": augment,
    }


def _classify_plan_2d(fp: DatasetFingerprint, notes: list[str]) -> dict[str, object]:
    """One-slice images: the whole image, a 2D network."""
    spacing = fp.spacing_mm.median
    extent = fp.extent_mm.max

    def shape_at(sp: tuple[float, float, float]) -> tuple[int, int]:
        y, x = (_round_up(e / s, 8) for e, s in zip(extent[1:], sp[1:], strict=True))
        return y, x

    shape = shape_at(spacing)
    if math.prod(shape) > CLASSIFY_PIXEL_BUDGET_2D:
        factor = (math.prod(shape) / CLASSIFY_PIXEL_BUDGET_2D) ** 0.5
        # rounding up to whole blocks of 8 can overshoot: coarsen until within the budget
        while math.prod(shape_at((spacing[0], spacing[1] * factor, spacing[2] * factor))) > (
            CLASSIFY_PIXEL_BUDGET_2D
        ):
            factor *= 1.02
        spacing = (spacing[0], spacing[1] * factor, spacing[2] * factor)
        shape = shape_at(spacing)
        notes.append(
            f"image over the {CLASSIFY_PIXEL_BUDGET_2D} pixel budget: pixel spacing coarsened "
            f"by {factor:.2f}x"
        )
    spacing = (round(spacing[0], 3), round(spacing[1], 3), round(spacing[2], 3))
    notes.append(
        f"one-slice images: 2D, the whole image at {spacing[1:]} mm pixels (padded to "
        f"{shape}), kept as stored (no reorientation)"
    )
    depth = _detector_depth(shape, notes)
    per_sample = cnn_training_bytes_per_sample(shape, depth)
    fits = max(1, _available_memory_bytes() // 4 // per_sample)
    # few cases: small batches give more updates per epoch
    cap = max(8, min(32, fp.n_cases // 25))
    batch = int(min(fits, cap))
    notes.append(f"lungct-cnn in 2D: depth {depth}, batch {batch} (memory allows {fits})")
    augment = augment_preset("flip+shift" if fp.modality == "CT" else "xray")
    notes.append(f"augmentation {augment.name!r}")
    return {
        "preprocess": PreprocessContract(
            spacing_mm=spacing,
            orientation=None,
            shape=shape,
            crop_to="center",
            mask_outside_lungs=False,
            modality=fp.modality,
            **_denoiser(fp, notes),  # type: ignore[arg-type]
            **_intensity(fp, True, notes),  # type: ignore[arg-type]
        ),
        "model_name": "lungct-cnn",
        "network_depth": depth,
        "spatial_dims": 2,
        "batch_size": batch,
        "augment": augment,
    }


def _segment_plan(fp: DatasetFingerprint, notes: list[str]) -> dict[str, object]:
    _modality_note(fp, notes)
    spacing = _target_spacing(fp, notes)
    median_shape = [e / s for e, s in zip(fp.extent_mm.median, spacing, strict=True)]
    flat = median_shape[0] < 1.5  # one slice: 2D images
    patch = [1.0, *median_shape[1:]] if flat else [float(n) for n in median_shape]
    while math.prod(patch) > SEGMENT_PATCH_BUDGET:
        # shrink the longest side (mm); a 2D image keeps its single slice
        axis = max(range(1 if flat else 0, 3), key=lambda a: patch[a] * spacing[a])
        patch[axis] *= 0.9
    # levels until the smallest in-plane side is about 4-8 voxels at the bottom (nnU-Net)
    depth = max(2, min(5, int(math.log2(max(8.0, min(patch[1:])) / 4)) + 1))
    if flat:
        # one-slice images: nnU-Net's architecture with 1x3x3 kernels, the slice axis unpooled
        model, z_levels = "dynunet", 0
    else:
        # MONAI UNet pools every axis together: the slice axis bounds the depth
        model = "unet"
        depth = max(2, min(depth, int(math.log2(max(4.0, patch[0]) / 4)) + 1))
        z_levels = depth - 1
    steps = (2**z_levels, 2 ** (depth - 1), 2 ** (depth - 1))
    size = tuple(
        max(step, int(round(min(p, m) / step)) * step) if p > 1 else 1
        for p, m, step in zip(patch, median_shape, steps, strict=True)
    )
    kind = "2D (one-slice images)" if flat else "3D"
    notes.append(
        f"{kind} patch {size} from the median image size, within {SEGMENT_PATCH_BUDGET} voxels"
    )
    why = (
        "1x3x3 kernels, the slice axis never pooled"
        if flat
        else "on two CPU cores MONAI's UNet (strided residual units) trained ~3x more patches "
        "per minute than nnU-Net's architecture (DynUNet) and reached a higher nodule Dice in "
        "the same budget"
    )
    notes.append(
        f"{model}: {depth} levels, {SEGMENT_BASE_FILTERS} filters at full resolution, "
        f"batch 2; {why}"
    )
    kwargs = {"depth": depth, "base_filters": SEGMENT_BASE_FILTERS}
    if model == "dynunet":
        kwargs["z_levels"] = z_levels
    return {
        "preprocess": PreprocessContract(
            spacing_mm=spacing,
            shape=None,
            crop_to="body",
            mask_outside_lungs=False,
            modality=fp.modality,
            **_intensity(fp, False, notes),  # type: ignore[arg-type]
        ),
        "model_name": model,
        "network_depth": depth,
        "model_kwargs": kwargs,
        "batch_size": 2,
        "patch_size": size,
    }


def _plan(
    fingerprint: DatasetFingerprint,
    task: Literal["classify", "segment"],
    choose: Callable[[DatasetFingerprint, list[str]], dict[str, object]],
) -> Plan:
    notes: list[str] = []
    choices = choose(fingerprint, notes)
    return Plan(
        task=task,
        created_by=f"medsight {medsight.__version__}",
        notes=notes,
        fingerprint=fingerprint,
        **choices,  # type: ignore[arg-type]
    )


def make_classify_plan(
    fingerprint: DatasetFingerprint, voxel_budget: int = CLASSIFY_VOXEL_BUDGET
) -> Plan:
    """The plan of a classification run (the image-classify task's) from ``fingerprint``.

    ``voxel_budget`` caps a 3D input's voxels (in-plane spacing is coarsened to fit): a
    smaller budget trains faster (`medsight demo` picks it from a throughput probe).
    """
    return _plan(fingerprint, "classify", lambda fp, notes: _classify_plan(fp, notes, voxel_budget))


def make_segment_plan(fingerprint: DatasetFingerprint) -> Plan:
    """The plan of a segmentation run (the image-segment task's) from ``fingerprint``."""
    return _plan(fingerprint, "segment", _segment_plan)


def write_plan(path: Path, plan: Plan) -> Path:
    """Save ``plan`` as indented JSON (atomically)."""
    return write_text_atomic(path, plan.model_dump_json(indent=2) + "\n")


def read_plan(path: Path) -> Plan:
    """Load a plan a person may have edited.

    Raises:
        InputError: the file is missing or does not describe a valid plan (the message names
            the first offending field).
    """
    if not path.is_file():
        raise InputError(f"{path}: no plan; run `medsight plan DATA -o {path}` first")
    try:
        return Plan.model_validate_json(path.read_text(encoding="utf-8"))
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise InputError(f"{path}: invalid plan: {where}: {err['msg']}") from None
