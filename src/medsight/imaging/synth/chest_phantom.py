"""A procedural chest CT phantom in Hounsfield units, with an optional lung nodule.

Arrays are ``[z, y, x]``; world coordinates are patient LPS millimetres with the origin at
the body centre (x towards patient left, y towards posterior, z towards head). Every shape
is rendered from a signed distance with a one-voxel soft edge, which gives the partial-volume
look of real CT; scanner blur and noise are applied last.

Nothing in the stack generates anatomy (TorchIO/MONAI synthesise only blobs), hence this
module. The anatomy is coarse but placed in realistic HU ranges: air -1000, lung ~ -850,
fat ~ -100, soft tissue/muscle/vessels ~ +40, cancellous bone ~ +250, cortical bone ~ +700.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

AIR, LUNG, FAT, SOFT, CSF = -1000.0, -860.0, -100.0, 40.0, 10.0


@dataclass(frozen=True)
class Nodule:
    """One lung nodule: where, how big and what it looks like."""

    kind: str  # "benign" | "malignant"
    diameter_mm: float
    solid_hu: float
    center_frac: tuple[float, float, float]  # position as fractions of the lung's extent
    axes_ratio: tuple[float, float, float] = (1.0, 1.0, 1.0)
    calcified: str = "none"  # "none" | "central" | "diffuse"
    calcium_hu: float = 0.0
    lobulation: tuple[tuple[float, float, float, float], ...] = ()  # (amp, freq_t, freq_p, phase)
    spicules: tuple[tuple[float, float, float, float], ...] = ()  # (theta, phi, len_frac, width_mm)
    ground_glass_core: float = 1.0  # solid core radius / full radius; <1 is part-solid
    ground_glass_hu: float = -450.0


@dataclass(frozen=True)
class Anatomy:
    """Per-case body habitus and scanner settings."""

    body_axes_mm: tuple[float, float]
    fat_mm: float
    lung_hu: float
    lung_base_mm: float
    lung_height_mm: float
    spine_radius_mm: float
    rib_phase_mm: float
    noise_hu: float
    blur_vox: float
    vessel_seed: int
    side: str = "right"  # lung holding the nodule
    extra: dict[str, float] = field(default_factory=dict)


def _grid(shape: tuple[int, int, int], spacing_mm: tuple[float, float, float], z0: float):
    nz, ny, nx = shape
    sz, sy, sx = spacing_mm
    z = z0 + np.arange(nz, dtype=np.float32)[:, None, None] * sz
    y = (np.arange(ny, dtype=np.float32) - (ny - 1) / 2)[None, :, None] * sy
    x = (np.arange(nx, dtype=np.float32) - (nx - 1) / 2)[None, None, :] * sx
    return z, y, x


def _soft(signed_inside_mm: np.ndarray, edge_mm: float) -> np.ndarray:
    """Partial-volume occupancy from a signed distance (positive inside)."""
    return np.clip(0.5 + signed_inside_mm / edge_mm, 0.0, 1.0).astype(np.float32)


def _blend(volume: np.ndarray, occupancy: np.ndarray, hu: float | np.ndarray) -> None:
    volume *= 1 - occupancy
    volume += occupancy * hu


def _lung_occupancy(z, y, x, a: Anatomy, sign: float, edge: float) -> np.ndarray:
    ax, by = a.body_axes_mm
    t = (z - a.lung_base_mm) / a.lung_height_mm
    taper = np.clip(np.sin(np.pi * np.clip(t, 0, 1)), 0, 1) ** 0.45
    cx, cy = sign * 0.46 * ax, 0.05 * by
    lx, ly = 0.40 * ax, 0.76 * by
    # heart notch: the left lung (x > 0) is narrower anteriorly in the lower half
    if sign > 0:
        lx = lx * 0.92
    r = np.sqrt(((x - cx) / lx) ** 2 + ((y - cy) / ly) ** 2)
    inside = (taper - r) * min(lx, ly)
    # diaphragm dome: lung base rises towards the lung's centre
    dome = a.lung_base_mm + 25.0 * np.clip(1 - r**2, 0, 1)
    inside = np.minimum(inside, z - dome)
    # the lungs stay inside the rib cage: fat, muscle and ribs (>= 12 mm) line the chest wall
    wall_x, wall_y = ax - a.fat_mm - 12.0, by - a.fat_mm - 12.0
    cage = (1 - np.sqrt((x / wall_x) ** 2 + (y / wall_y) ** 2)) * min(wall_x, wall_y)
    inside = np.minimum(inside, cage)
    occ = _soft(inside, edge)
    if sign > 0:  # heart
        heart = 1 - np.sqrt(
            ((x - 0.12 * ax) / (0.32 * ax)) ** 2 + ((y + 0.22 * by) / (0.4 * by)) ** 2
        )
        zt = (z - a.lung_base_mm - 0.1 * a.lung_height_mm) / (0.45 * a.lung_height_mm)
        heart = np.minimum(heart, 1 - zt**2) * 60.0
        occ = occ * (1 - _soft(heart, edge))
    return occ


def _vessel_segments(a: Anatomy, sign: float) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """A branching vessel tree from the hilum of one lung: (start, end, radius_mm)."""
    rng = np.random.default_rng(a.vessel_seed + (1 if sign > 0 else 0))
    ax, by = a.body_axes_mm
    hilum = np.array([sign * 0.2 * ax, 0.0, a.lung_base_mm + 0.5 * a.lung_height_mm])
    segments = []
    stack = [(hilum, np.array([sign, 0.0, 0.0]), 2.0, 0)]
    while stack:
        start, direction, radius, depth = stack.pop()
        d = direction + rng.normal(0, 0.45, 3)
        d /= np.linalg.norm(d)
        length = rng.uniform(22, 38) * (0.85**depth)
        end = start + d * length
        segments.append((start, end, radius))
        if depth < 5:
            for _ in range(2):
                stack.append((end, d + rng.normal(0, 0.6, 3), max(0.6, radius * 0.72), depth + 1))
    return segments


def _render_segment(vol_occ: np.ndarray, z, y, x, p0, p1, radius, edge) -> None:
    lo = np.minimum(p0, p1) - radius - 2 * edge
    hi = np.maximum(p0, p1) + radius + 2 * edge
    xs = np.nonzero((x[0, 0] >= lo[0]) & (x[0, 0] <= hi[0]))[0]
    ys = np.nonzero((y[0, :, 0] >= lo[1]) & (y[0, :, 0] <= hi[1]))[0]
    zs = np.nonzero((z[:, 0, 0] >= lo[2]) & (z[:, 0, 0] <= hi[2]))[0]
    if not (xs.size and ys.size and zs.size):
        return
    sl = (slice(zs[0], zs[-1] + 1), slice(ys[0], ys[-1] + 1), slice(xs[0], xs[-1] + 1))
    px, py, pz = x[:, :, sl[2]], y[:, sl[1], :], z[sl[0]]
    seg = p1 - p0
    seg_len2 = float(seg @ seg) or 1.0
    t = np.clip(
        ((px - p0[0]) * seg[0] + (py - p0[1]) * seg[1] + (pz - p0[2]) * seg[2]) / seg_len2, 0, 1
    )
    dist = np.sqrt(
        (px - p0[0] - t * seg[0]) ** 2
        + (py - p0[1] - t * seg[1]) ** 2
        + (pz - p0[2] - t * seg[2]) ** 2
    )
    occ = _soft(radius - dist, edge)
    np.maximum(vol_occ[sl], occ, out=vol_occ[sl])


def _nodule_fields(n: Nodule, center, z, y, x, edge):
    """(occupancy of the whole nodule, occupancy of its solid core, calcium occupancy)."""
    radius = n.diameter_mm / 2
    reach = radius * 2.4 + 3 * edge
    xs = np.nonzero(np.abs(x[0, 0] - center[0]) <= reach)[0]
    ys = np.nonzero(np.abs(y[0, :, 0] - center[1]) <= reach)[0]
    zs = np.nonzero(np.abs(z[:, 0, 0] - center[2]) <= reach)[0]
    sl = (slice(zs[0], zs[-1] + 1), slice(ys[0], ys[-1] + 1), slice(xs[0], xs[-1] + 1))
    dx = x[:, :, sl[2]] - center[0]
    dy = y[:, sl[1], :] - center[1]
    dz = z[sl[0]] - center[2]
    ex, ey, ez = n.axes_ratio
    r = np.sqrt((dx / ex) ** 2 + (dy / ey) ** 2 + (dz / ez) ** 2) + 1e-6
    dx, dy, dz = np.broadcast_arrays(dx, dy, dz)
    theta = np.arccos(np.clip(dz / ez / r, -1, 1))
    phi = np.arctan2(dy, dx)
    surface = np.full_like(r, radius)
    for amp, ft, fp, phase in n.lobulation:
        surface *= 1 + amp * np.sin(ft * theta + phase) * np.cos(fp * phi + 2 * phase)
    whole = _soft(surface - r, edge)
    for th, ph, len_frac, width in n.spicules:
        direction = np.array([np.sin(th) * np.cos(ph), np.sin(th) * np.sin(ph), np.cos(th)])
        length = radius * (1 + len_frac)
        t = np.clip(dx * direction[0] + dy * direction[1] + dz * direction[2], 0, length)
        dist = np.sqrt(
            (dx - t * direction[0]) ** 2
            + (dy - t * direction[1]) ** 2
            + (dz - t * direction[2]) ** 2
        )
        taper = width * (1 - 0.8 * t / length)
        np.maximum(whole, _soft(taper - dist, edge) * 0.85, out=whole)
    core = _soft(surface * n.ground_glass_core - r, edge) if n.ground_glass_core < 1 else whole
    if n.calcified == "central":
        calcium = _soft(radius * 0.45 - r, edge)
    elif n.calcified == "diffuse":
        calcium = _soft(surface * 0.85 - r, edge)
    else:
        calcium = np.zeros_like(r)
    return whole, core, calcium, sl


def render_chest(
    anatomy: Anatomy,
    nodule: Nodule | None,
    shape: tuple[int, int, int],
    spacing_mm: tuple[float, float, float],
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Render one chest CT.

    Args:
        anatomy: body habitus and scanner parameters.
        nodule: the lesion to place, or None for a normal case.
        shape: ``(z, y, x)`` voxels.
        spacing_mm: ``(z, y, x)`` voxel size.
        rng: source of scanner noise.

    Returns:
        ``(hu, mask)``: float32 HU volume and uint8 label map (lungs 1, nodule 2).
    """
    z, y, x = _grid(shape, spacing_mm, 0.0)
    edge = float(min(spacing_mm[1:]))
    ax, by = anatomy.body_axes_mm
    hu = np.full(shape, AIR, dtype=np.float32)
    wobble = 1 + 0.04 * np.sin(z / 37.0)
    body = 1 - np.sqrt((x / (ax * wobble)) ** 2 + (y / (by * wobble)) ** 2)
    _blend(hu, _soft(body * min(ax, by), edge), FAT)
    inner = 1 - np.sqrt(
        (x / (ax * wobble - anatomy.fat_mm)) ** 2 + (y / (by * wobble - anatomy.fat_mm)) ** 2
    )
    _blend(hu, _soft(inner * (min(ax, by) - anatomy.fat_mm), edge), SOFT)
    # ribs: oblique bands on the inner chest wall, one every ~28 mm
    wall = np.sqrt(
        (x / (ax * wobble - anatomy.fat_mm - 9)) ** 2
        + (y / (by * wobble - anatomy.fat_mm - 9)) ** 2
    )
    angle = np.arctan2(y, x)
    rib_z = np.mod(z + anatomy.rib_phase_mm - 14.0 * np.sin(angle), 28.0) - 14.0
    rib = np.minimum(6.0 - np.abs(rib_z) * 1.2, (0.06 - np.abs(wall - 1.0)) * 80)
    rib = np.minimum(rib, (np.abs(np.sin(angle)) - 0.15) * 40)  # no ribs at the sternum/spine
    _blend(hu, _soft(rib, edge), 650.0)
    # spine (vertebral body, canal) and descending aorta
    sx0, sy0 = 0.0, 0.72 * by
    vert = anatomy.spine_radius_mm - np.sqrt((x - sx0) ** 2 + (y - sy0) ** 2)
    _blend(hu, _soft(vert, edge), 700.0)
    _blend(hu, _soft(vert - 2.5, edge), 240.0)
    canal = 7.0 - np.sqrt((x - sx0) ** 2 + (y - sy0 - anatomy.spine_radius_mm - 8) ** 2)
    _blend(hu, _soft(canal, edge), CSF)
    sternum = np.minimum(12.0 - np.abs(x), 6.0 - np.abs(y + by * wobble - anatomy.fat_mm - 14))
    _blend(hu, _soft(sternum, edge), 300.0)
    lungs = np.zeros(shape, dtype=np.float32)
    vessels = np.zeros(shape, dtype=np.float32)
    lung_texture = ndimage.gaussian_filter(rng.normal(0, 1, shape).astype(np.float32), 2.0) * 60
    for sign in (-1.0, 1.0):
        occ = _lung_occupancy(z, y, x, anatomy, sign, edge)
        np.maximum(lungs, occ, out=lungs)
        for p0, p1, radius in _vessel_segments(anatomy, sign):
            _render_segment(vessels, z, y, x, p0, p1, radius, edge)
    _blend(hu, lungs, anatomy.lung_hu + lung_texture)
    aorta = 13.0 - np.sqrt((x - 0.2 * ax) ** 2 + (y - 0.45 * by) ** 2)
    _blend(hu, _soft(aorta, edge) * (z > anatomy.lung_base_mm), SOFT)
    _blend(hu, vessels * lungs, SOFT)
    mask = (lungs > 0.5).astype(np.uint8)
    if nodule is not None:
        center = nodule_center(anatomy, nodule, lungs, (z, y, x))
        whole, core, calcium, sl = _nodule_fields(nodule, center, z, y, x, edge)
        inside = lungs[sl]
        region = hu[sl]
        _blend(
            region,
            whole * inside,
            nodule.ground_glass_hu if nodule.ground_glass_core < 1 else nodule.solid_hu,
        )
        if nodule.ground_glass_core < 1:
            _blend(region, core * inside, nodule.solid_hu)
        _blend(region, calcium * inside, nodule.calcium_hu)
        mask[sl][(whole * inside) > 0.5] = 2
    sigma = (anatomy.blur_vox * 0.4, anatomy.blur_vox, anatomy.blur_vox)
    hu = ndimage.gaussian_filter(hu, sigma)
    noise = ndimage.gaussian_filter(rng.normal(0, 1, shape).astype(np.float32), (0, 0.6, 0.6))
    noise *= anatomy.noise_hu / max(float(noise.std()), 1e-6)
    hu += noise
    return np.clip(hu, -1024, 3071).astype(np.float32), mask


def nodule_center(anatomy: Anatomy, nodule: Nodule, lungs: np.ndarray, grid) -> np.ndarray:
    """World position (x, y, z mm) of the nodule: a lung voxel picked by ``center_frac``.

    The nodule sits at the lung voxel nearest the fractional position inside the chosen
    lung's bounding box, kept about 1.3 radii + 4 mm from the lung edge when the lung
    allows (lobulation and spicules reach beyond the radius).
    """
    z, y, x = grid
    side_mask = (lungs > 0.5) & ((x > 0) if anatomy.side == "left" else (x < 0))
    if not side_mask.any():
        side_mask = lungs > 0.5
    spacing = (
        float(z[1, 0, 0] - z[0, 0, 0]) if z.shape[0] > 1 else 1.0,
        float(y[0, 1, 0] - y[0, 0, 0]),
        float(x[0, 0, 1] - x[0, 0, 0]),
    )
    depth = ndimage.distance_transform_edt(side_mask, sampling=spacing)
    deep = depth >= min(0.65 * nodule.diameter_mm + 4, float(depth.max()) * 0.6)
    idx = np.argwhere(deep)
    lo, hi = idx.min(axis=0), idx.max(axis=0)
    target = lo + np.array(nodule.center_frac) * (hi - lo)
    best = idx[np.argmin(((idx - target) ** 2).sum(axis=1))]
    return np.array([x[0, 0, best[2]], y[0, best[1], 0], z[best[0], 0, 0]], dtype=float)
