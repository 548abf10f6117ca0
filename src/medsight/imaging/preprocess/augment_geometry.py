"""Deterministic geometric augmentations: flip, shift, rotate, scale, elastic deformation.

Each function is pure: the same array and parameters give the same output, bit for bit, so
a random augmentation only has to record its parameters (see `augment_random`,
`augment_replay`). Arrays are 2D ``[y, x]`` or 3D ``[z, y, x]``; all geometry is in voxel
index space (rotation and scaling about the array centre, displacements in voxels), so
resample anisotropic volumes to near-isotropic spacing first or rotate in-plane only.

Images and label maps go through the same transform with the same parameters and stay
aligned: with ``label=False`` (images) values are interpolated with spline ``order`` (1
linear, 3 cubic), samples from outside the array repeat the edge voxel, and the result is
float32; with ``label=True`` (masks) the order is forced to 0 (nearest neighbour), outside
is background 0, and the dtype and the set of label values are kept.

Interpolation is scipy.ndimage (``affine_transform``, ``map_coordinates``) rather than
MONAI's ``Rotate``/``Zoom``/``Rand3DElastic``: those return torch MetaTensors even for numpy
input, interpolate with torch's ``grid_sample`` (no cubic in 3D), ``Zoom`` crops/pads after
resizing instead of scaling about the centre, and MONAI's elastic transforms exist only in a
random form that draws its own offsets, so they cannot be replayed from recorded parameters.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import ndimage


def _prepared(array: np.ndarray, label: bool) -> tuple[np.ndarray, np.dtype]:
    """The array to interpolate and the dtype to return."""
    values = np.asarray(array)
    if values.ndim not in (2, 3):
        raise ValueError(f"expected a 2D [y, x] or 3D [z, y, x] array, got shape {values.shape}")
    if not label:
        return values.astype(np.float32, copy=False), np.dtype(np.float32)
    # scipy.ndimage cannot interpolate booleans; uint8 holds them exactly
    work = values.view(np.uint8) if values.dtype == np.bool_ else values
    return work, values.dtype


def _per_axis(value: float | Sequence[float], ndim: int, name: str) -> np.ndarray:
    values = np.atleast_1d(np.asarray(value, dtype=np.float64))
    if values.size == 1:
        values = np.repeat(values, ndim)
    if values.shape != (ndim,):
        raise ValueError(f"{name} needs 1 or {ndim} values for a {ndim}D array, got {value}")
    return values


def _affine_about_centre(
    array: np.ndarray, matrix: np.ndarray, order: int, label: bool
) -> np.ndarray:
    """Resample so output index ``o`` reads input ``matrix @ (o - c) + c`` (c: centre)."""
    work, dtype = _prepared(array, label)
    centre = (np.asarray(work.shape, dtype=np.float64) - 1.0) / 2.0
    out = ndimage.affine_transform(
        work,
        matrix,
        offset=centre - matrix @ centre,
        order=0 if label else order,
        mode="constant" if label else "nearest",
        cval=0.0,
        output=work.dtype if label else np.float32,
    )
    return out.astype(dtype, copy=False) if label else out


def flip(array: np.ndarray, axes: Sequence[int], label: bool = False) -> np.ndarray:
    """Mirror the array along ``axes``.

    Args:
        array: ``[y, x]`` or ``[z, y, x]``.
        axes: array axes to reverse (negative counts from the end: -1 is x, left-right).
        label: keep the dtype (masks) instead of returning float32.

    Returns:
        A new contiguous array.
    """
    work, dtype = _prepared(array, label)
    out = np.flip(work, axis=tuple(int(a) for a in axes)) if len(axes) else work
    return np.array(out, dtype=dtype, copy=True)


def shift(array: np.ndarray, steps_vox: Sequence[int], label: bool = False) -> np.ndarray:
    """Shift the array by whole voxels, circularly (what leaves one side enters the other).

    Circular, as ``torch.roll``: the training loop has shifted this way from the start, and
    its crops are centred with a margin of background, so what wraps round is background.

    Args:
        array: ``[y, x]`` or ``[z, y, x]``.
        steps_vox: one shift per axis, in voxels (positive towards higher indices).
        label: keep the dtype (masks) instead of returning float32.

    Returns:
        A new array of the same shape.

    Raises:
        ValueError: not one step per axis.
    """
    work, dtype = _prepared(array, label)
    if len(steps_vox) != work.ndim:
        raise ValueError(f"need {work.ndim} steps for a {work.ndim}D array, got {steps_vox}")
    out = np.roll(work, shift=tuple(int(s) for s in steps_vox), axis=tuple(range(work.ndim)))
    return np.asarray(out, dtype=dtype)


def _plane_rotation(ndim: int, axes: tuple[int, int], angle_deg: float) -> np.ndarray:
    rotation = np.eye(ndim)
    a, b = axes
    cos, sin = math.cos(math.radians(angle_deg)), math.sin(math.radians(angle_deg))
    rotation[a, a], rotation[a, b] = cos, sin
    rotation[b, a], rotation[b, b] = -sin, cos
    return rotation


def rotation_matrix(angles_deg: Sequence[float]) -> np.ndarray:
    """Rotation in index space: ``[angle]`` in 2D, ``[about z, about y, about x]`` in 3D.

    About z is in the axial ``(y, x)`` plane (the in-plane rotation of a slice), about y
    in the ``(z, x)`` plane, about x in the ``(z, y)`` plane; the 3D matrix is
    ``Rz @ Ry @ Rx``. A positive angle turns a plane's second axis towards its first
    (x towards y about z).

    Args:
        angles_deg: one angle (2D) or three (3D), in degrees.

    Returns:
        The ``ndim x ndim`` rotation matrix acting on index vectors ``(z, y, x)``/``(y, x)``.

    Raises:
        ValueError: not one or three angles.
    """
    angles = [float(a) for a in angles_deg]
    if len(angles) == 1:
        return _plane_rotation(2, (0, 1), angles[0])
    if len(angles) == 3:
        about_z = _plane_rotation(3, (1, 2), angles[0])
        about_y = _plane_rotation(3, (0, 2), angles[1])
        about_x = _plane_rotation(3, (0, 1), angles[2])
        return about_z @ about_y @ about_x
    raise ValueError(f"need 1 angle (2D) or 3 angles (3D), got {angles}")


def rotate(
    array: np.ndarray, angles_deg: Sequence[float], order: int = 1, label: bool = False
) -> np.ndarray:
    """Rotate about the array centre, keeping the shape.

    Args:
        array: ``[y, x]`` or ``[z, y, x]``.
        angles_deg: one angle for 2D, three for 3D (see `rotation_matrix`).
        order: spline order for images (0, 1 or 3).
        label: nearest neighbour, background 0 outside, dtype kept (masks).

    Returns:
        The rotated array (same shape).

    Raises:
        ValueError: the number of angles does not match the array's dimensions.
    """
    rotation = rotation_matrix(angles_deg)
    if rotation.shape[0] != np.ndim(array):
        raise ValueError(f"{len(angles_deg)} angle(s) do not fit a {np.ndim(array)}D array")
    # affine_transform pulls: output index -> input index is the inverse rotation
    return _affine_about_centre(array, rotation.T, order, label)


def scale(
    array: np.ndarray, factor: float | Sequence[float], order: int = 1, label: bool = False
) -> np.ndarray:
    """Magnify (``factor`` > 1) or shrink about the array centre, keeping the shape.

    Args:
        array: ``[y, x]`` or ``[z, y, x]``.
        factor: one factor or one per axis; 1.2 makes structures 20% larger.
        order: spline order for images (0, 1 or 3).
        label: nearest neighbour, background 0 outside, dtype kept (masks).

    Returns:
        The scaled array (same shape).

    Raises:
        ValueError: a factor is not positive, or there are neither 1 nor ``ndim`` factors.
    """
    factors = _per_axis(factor, np.ndim(array), "factor")
    if not (factors > 0).all():
        raise ValueError(f"scale factors must be positive, got {factor}")
    return _affine_about_centre(array, np.diag(1.0 / factors), order, label)


def elastic_displacement(
    shape: Sequence[int], control_points: int, max_displacement_vox: float, seed: int
) -> np.ndarray:
    """Smooth random displacement field, reproducible from its parameters.

    As TorchIO's ``RandomElasticDeformation``: displacements drawn uniformly in
    ``[-max_displacement_vox, max_displacement_vox]`` per axis on a coarse grid of
    ``control_points`` per axis (border control points fixed at 0, so the field of view's
    edge stays put), interpolated to every voxel with a cubic B-spline.

    Args:
        shape: array shape, 2D or 3D.
        control_points: control points per axis (at least 4: two fixed borders plus two
            free points); more points give a more local, wigglier deformation.
        max_displacement_vox: largest control-point displacement, in voxels.
        seed: seed of the numpy generator that draws the displacements.

    Returns:
        float64 array ``(ndim, *shape)``: displacement of each voxel along each axis.

    Raises:
        ValueError: fewer than 4 control points or a negative displacement.
    """
    if control_points < 4:
        raise ValueError(f"need at least 4 control points per axis, got {control_points}")
    if max_displacement_vox < 0:
        raise ValueError(f"max_displacement_vox must be >= 0, got {max_displacement_vox}")
    ndim = len(shape)
    rng = np.random.default_rng(seed)
    grid = (int(control_points),) * ndim
    coarse = rng.uniform(-max_displacement_vox, max_displacement_vox, size=(ndim, *grid))
    inner = tuple(slice(1, -1) for _ in range(ndim))
    locked = np.zeros_like(coarse)
    locked[(slice(None), *inner)] = coarse[(slice(None), *inner)]
    positions = np.meshgrid(
        *(np.linspace(0.0, control_points - 1.0, int(n)) for n in shape), indexing="ij"
    )
    return np.stack(
        [ndimage.map_coordinates(component, positions, order=3) for component in locked]
    )


def elastic(
    array: np.ndarray,
    control_points: int,
    max_displacement_vox: float,
    seed: int,
    order: int = 1,
    label: bool = False,
) -> np.ndarray:
    """Warp the array by the displacement field of `elastic_displacement`.

    Args:
        array: ``[y, x]`` or ``[z, y, x]``.
        control_points: control points per axis (see `elastic_displacement`).
        max_displacement_vox: largest control-point displacement, in voxels.
        seed: seed of the displacement field; the same seed warps image and mask alike.
        order: spline order for images (0, 1 or 3).
        label: nearest neighbour, background 0 outside, dtype kept (masks).

    Returns:
        The warped array (same shape).
    """
    work, dtype = _prepared(array, label)
    field = elastic_displacement(work.shape, control_points, max_displacement_vox, seed)
    coordinates = np.indices(work.shape, dtype=np.float64) + field
    out = ndimage.map_coordinates(
        work,
        coordinates,
        order=0 if label else order,
        mode="constant" if label else "nearest",
        cval=0.0,
        output=work.dtype if label else np.float32,
    )
    return out.astype(dtype, copy=False) if label else out
