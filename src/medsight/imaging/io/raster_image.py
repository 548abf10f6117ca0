"""Read a PNG or JPEG (8- or 16-bit, grey-scale or colour) into a one-slice `Volume`.

Array convention: ``[1, rows, columns]`` float32 for grey-scale, ``[1, rows, columns, 3]``
for colour (RGB; alpha is dropped, palette and CMYK are converted), values as stored
(0-255 or 0-65535). These formats hold no physical geometry: spacing is 1 mm and the
orientation is the identity, and the volume's warnings say so.

Pillow decodes. The image size in the header is checked against `ReadLimits` before the
pixels are decoded (Pillow reads headers lazily), so a small file claiming a huge image is
refused without allocating it.
"""

from __future__ import annotations

import warnings as python_warnings
from pathlib import Path

import numpy as np
from PIL import Image

from medsight.errors import InputError
from medsight.imaging.io.limits import DEFAULT_LIMITS, ReadLimits
from medsight.imaging.io.volume import Volume

_FORMATS = {"PNG": "png", "JPEG": "jpeg", "MPO": "jpeg"}
_GREY_MODES = ("L", "LA", "I;16", "I;16B", "I;16L", "I", "F", "1")


def read_raster_image(path: str | Path, limits: ReadLimits = DEFAULT_LIMITS) -> Volume:
    """Read a PNG or JPEG file into a `Volume` of one slice.

    Raises:
        InputError: the file is missing, not a PNG/JPEG, larger than ``limits``, or its data
            are truncated or corrupt.
    """
    path = Path(path)
    where = str(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    limits.check_file(path.stat().st_size, where)
    try:
        with python_warnings.catch_warnings():
            # Pillow warns about large images; ReadLimits decides instead.
            python_warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                kind = _FORMATS.get(str(image.format))
                if kind is None:
                    raise InputError(f"{path}: {image.format} images are not supported (PNG, JPEG)")
                columns, rows = image.size
                limits.check_plane(rows, columns, where, rows_tag="height", columns_tag="width")
                channels = 1 if image.mode in _GREY_MODES else 3
                limits.check_size(
                    rows * columns * channels,
                    rows * columns * channels * 4,
                    where,
                    f"{rows} x {columns} x {channels} (height x width x channels)",
                )
                mode = image.mode
                image.load()
                dropped_alpha = "A" in mode
                if channels == 1:
                    pixels = np.asarray(image.convert("L") if mode in ("1", "LA") else image)
                else:
                    pixels = np.asarray(image.convert("RGB"))
    except InputError:
        raise
    except Exception as exc:  # Pillow raises many types for broken files
        raise InputError(f"{path}: not a readable PNG/JPEG image ({type(exc).__name__})") from None
    array = pixels.astype(np.float32)[np.newaxis]
    warnings = ["no physical pixel spacing in this format: 1 mm assumed"]
    if dropped_alpha:
        warnings.append("alpha channel dropped")
    return Volume(
        array=np.ascontiguousarray(array),
        spacing_mm=(1.0, 1.0, 1.0),
        modality="OT",
        meta={
            "kind": kind,
            "n_slices": 1,
            "photometric": "MONOCHROME2" if channels == 1 else "RGB",
            "bits": 16 if mode.startswith("I") else 8,
            "slice_gaps_irregular": False,
            "warnings": warnings,
        },
    )
