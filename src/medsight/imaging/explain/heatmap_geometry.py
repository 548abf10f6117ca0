"""Where the model's input grid lies in the input volume, and heatmaps mapped back onto it.

`apply_contract` resamples a volume to ``contract.spacing_mm`` and then cuts (or pads) a
``contract.shape`` box around the lungs (or the body); a heatmap computed on the model's
input is indexed on that box. `model_grid` runs the geometric half of `apply_contract`
itself (`contract_geometry`: orientation, resampling, denoising, crop centre; then the same
rounding) to find the box, and `heatmap_to_input` undoes it: the map is placed into the
resampled grid (0 outside the box: the model never saw those voxels), then resampled
trilinearly back to the reoriented input's shape, so it can be written with that volume's
affine and overlaid on the input in any viewer.

Conventions: arrays and index triples are ``[z, y, x]``; affines map voxel ``(x, y, z)``
to RAS+ millimetres (NIfTI). Resampling is torch's interpolation with
``align_corners=False``, under which voxel ``j`` of an ``R``-voxel axis resampled from
``n`` voxels sits at input index ``(j + 0.5) * n / R - 0.5``; the way back uses the same
rule, so the two grids line up exactly, whatever the rounding of ``R``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from medsight.imaging.io.volume import Volume
from medsight.imaging.preprocess.contract import PreprocessContract, contract_geometry

Shape3 = tuple[int, int, int]


@dataclass(frozen=True)
class ModelGrid:
    """The model input's voxel grid, described in the input volume's voxel grid.

    Attributes:
        input_shape: Shape of the input volume ``[z, y, x]``.
        resampled_shape: Shape after resampling to the contract's spacing.
        crop_start: First resampled voxel of the box (negative where the box was padded).
        crop_shape: Shape of the box, i.e. of the model's input.
    """

    input_shape: Shape3
    resampled_shape: Shape3
    crop_start: Shape3
    crop_shape: Shape3

    def input_index(self, model_index_zyx: np.ndarray) -> np.ndarray:
        """Continuous input voxel indices ``[..., (z, y, x)]`` of model-grid voxel indices.

        Args:
            model_index_zyx: Indices on the model grid, last axis ``(z, y, x)``.

        Returns:
            The same points as (fractional) input voxel indices, float64.
        """
        scale = np.asarray(self.input_shape, float) / np.asarray(self.resampled_shape, float)
        shifted = np.asarray(model_index_zyx, float) + np.asarray(self.crop_start, float)
        return (shifted + 0.5) * scale - 0.5

    def affine_ras(self, input_affine_ras: np.ndarray) -> np.ndarray:
        """4x4 affine of the model grid: voxel ``(x, y, z)`` to RAS+ mm.

        Args:
            input_affine_ras: The input volume's ``affine_ras()``.

        Returns:
            The model grid's affine, for writing a model-grid map as NIfTI.
        """
        scale = np.asarray(self.input_shape, float) / np.asarray(self.resampled_shape, float)
        model_to_input = np.eye(4)
        model_to_input[:3, :3] = np.diag(scale[::-1])
        model_to_input[:3, 3] = self.input_index(np.zeros(3))[::-1]
        return np.asarray(input_affine_ras, float) @ model_to_input


def model_grid(volume: Volume, contract: PreprocessContract) -> ModelGrid:
    """The box `apply_contract` cuts from ``volume``, in resampled voxels.

    The grid lies on ``canonical_volume(volume, contract)`` (the input in the contract's
    orientation): write maps placed with it using that volume's affine.

    Args:
        volume: The grey-scale input volume (HU for CT), as `read_image` returns it.
        contract: The preprocessing contract of the model.

    Returns:
        The grid; ``crop_shape`` equals ``contract.shape`` (or the resampled shape when the
        contract keeps it).

    Raises:
        ValueError: If the volume has a colour axis (contracts preprocess scalar images).
    """
    if volume.channels != 1:
        raise ValueError("model_grid needs a grey-scale volume; this one has colour")
    volume, resampled, _, center = contract_geometry(volume, contract)
    resampled_shape = _shape3(resampled.shape)
    if contract.shape is None or center is None:
        return ModelGrid(volume.shape, resampled_shape, (0, 0, 0), resampled_shape)
    shape = contract.shape if len(contract.shape) == 3 else (1, *contract.shape)
    # the rounding of crop_or_pad
    start = tuple(int(round(c - (n - 1) / 2)) for c, n in zip(center, shape, strict=True))
    return ModelGrid(volume.shape, resampled_shape, _shape3(start), _shape3(shape))


def heatmap_to_input(heatmap: np.ndarray, grid: ModelGrid) -> np.ndarray:
    """A model-grid heatmap on the input volume's voxel grid.

    Args:
        heatmap: Map ``[z, y, x]`` on the model grid (``grid.crop_shape``), values in
            ``[0, 1]``.
        grid: Where the model grid lies (`model_grid`).

    Returns:
        Float32 map of shape ``grid.input_shape``, values in ``[0, 1]``, 0 where the model
        saw nothing (outside the crop); write it with the input's ``affine_ras()``.

    Raises:
        ValueError: If the heatmap's shape is not the grid's crop shape.
    """
    if tuple(heatmap.shape) != grid.crop_shape:
        raise ValueError(
            f"heatmap shape {tuple(heatmap.shape)} differs from the model grid {grid.crop_shape}"
        )
    resampled = np.zeros(grid.resampled_shape, dtype=np.float32)
    src, dst = [], []
    for n_resampled, n_crop, start in zip(
        grid.resampled_shape, grid.crop_shape, grid.crop_start, strict=True
    ):
        low, high = max(start, 0), min(start + n_crop, n_resampled)
        width = max(0, high - low)
        dst.append(slice(low, low + width))
        src.append(slice(low - start, low - start + width))
    resampled[tuple(dst)] = heatmap[tuple(src)]
    if grid.resampled_shape == grid.input_shape:
        restored = resampled
    else:
        tensor = torch.from_numpy(resampled)[None, None]
        restored = F.interpolate(
            tensor, size=grid.input_shape, mode="trilinear", align_corners=False
        )[0, 0].numpy()
    return np.clip(restored, 0.0, 1.0).astype(np.float32)


def _shape3(values: tuple[int, ...]) -> Shape3:
    z, y, x = (int(v) for v in values)
    return z, y, x
