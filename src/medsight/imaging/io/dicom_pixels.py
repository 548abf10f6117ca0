"""Decode the pixel data of one DICOM dataset into frames, after checking every size claim.

Array convention: `decode_frames` returns ``(frames, rows, columns)`` for one sample per
pixel, ``(frames, rows, columns, 3)`` RGB for colour, in the stored values' own dtype
(rescale is the caller's: it may differ per frame). `to_physical` turns one frame of stored
values into float32 physical values (HU for CT) in a caller-given buffer.

Before anything is decoded, `pixel_format` validates Rows, Columns, NumberOfFrames,
SamplesPerPixel, BitsAllocated, BitsStored, PixelRepresentation and
PhotometricInterpretation against each other and against `ReadLimits`, and `decode_frames`
checks that the pixel data holds as many bytes as they promise (native) or that each
compressed frame's codestream declares the same size as the header (encapsulated), and that
a decoder for the transfer syntax is installed. Uncompressed little-endian grey-scale data,
the common case, is viewed with ``numpy.frombuffer`` (no copy); everything else is decoded by
pydicom's pixel handlers (pylibjpeg, pyjpegls, RLE, colour conversion).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pydicom.pixels
import pydicom.uid
from pydicom.dataset import Dataset
from pydicom.encaps import generate_frames
from pydicom.uid import UID

from medsight.errors import InputError
from medsight.imaging.io.codestream import FrameSize, j2k_frame_size, jpeg_frame_size
from medsight.imaging.io.dicom_tags import tag_int, tag_str
from medsight.imaging.io.limits import ReadLimits

PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
_NATIVE_LITTLE = frozenset(
    [
        pydicom.uid.ImplicitVRLittleEndian,
        pydicom.uid.ExplicitVRLittleEndian,
        pydicom.uid.DeflatedExplicitVRLittleEndian,
    ]
)
_NATIVE = _NATIVE_LITTLE | {pydicom.uid.ExplicitVRBigEndian}
_JPEG_FAMILY = frozenset(
    [
        pydicom.uid.JPEGBaseline8Bit,
        pydicom.uid.JPEGExtended12Bit,
        pydicom.uid.JPEGLossless,
        pydicom.uid.JPEGLosslessSV1,
        pydicom.uid.JPEGLSLossless,
        pydicom.uid.JPEGLSNearLossless,
    ]
)
_J2K_FAMILY = frozenset(
    [
        pydicom.uid.JPEG2000Lossless,
        pydicom.uid.JPEG2000,
        pydicom.uid.HTJ2KLossless,
        pydicom.uid.HTJ2KLosslessRPCL,
        pydicom.uid.HTJ2K,
    ]
)
_MONOCHROME = ("MONOCHROME1", "MONOCHROME2")
_COLOUR = ("RGB", "YBR_FULL", "YBR_FULL_422", "YBR_RCT", "YBR_ICT", "YBR_PARTIAL_420")
_PALETTE = "PALETTE COLOR"
#: Modalities whose rescaled values are physical quantities (HU, activity): their
#: PhotometricInterpretation is a display hint and must not change the values.
PHYSICAL_MODALITIES = frozenset(["CT", "PT"])


@dataclass(frozen=True)
class PixelFormat:
    """The validated description of a dataset's pixel data, from its header alone."""

    rows: int
    columns: int
    frames: int
    samples: int
    bits_allocated: int
    bits_stored: int
    signed: bool
    photometric: str
    transfer_syntax: UID
    keyword: str

    @property
    def voxels(self) -> int:
        return self.frames * self.rows * self.columns * self.samples

    @property
    def decoded_bytes(self) -> int:
        return math.ceil(self.voxels * self.bits_allocated / 8)

    @property
    def native_bytes(self) -> int:
        """Bytes an uncompressed PixelData must hold (YBR_FULL_422 stores 2 values a pixel)."""
        values = self.voxels
        if self.photometric == "YBR_FULL_422" and self.samples == 3:
            values = values * 2 // 3
        return math.ceil(values * self.bits_allocated / 8)

    @property
    def stored_range(self) -> tuple[int, int]:
        """The smallest and largest value BitsStored/PixelRepresentation can encode."""
        if self.signed:
            return -(2 ** (self.bits_stored - 1)), 2 ** (self.bits_stored - 1) - 1
        return 0, 2**self.bits_stored - 1

    @property
    def is_native(self) -> bool:
        return self.transfer_syntax in _NATIVE


def transfer_syntax(ds: Dataset, where: str) -> UID:
    """The dataset's TransferSyntaxUID (from its file meta).

    Raises:
        InputError: the file meta lacks it (the pixel data cannot be interpreted).
    """
    meta = getattr(ds, "file_meta", None)
    value = None if meta is None else tag_str(meta, "TransferSyntaxUID", where)
    if not value:
        raise InputError(f"{where}: file meta lacks TransferSyntaxUID")
    return UID(value)


def pixel_format(ds: Dataset, where: str, limits: ReadLimits, keyword: str) -> PixelFormat:
    """Validate the header's description of the pixel data against itself and ``limits``.

    Args:
        ds: the dataset (the pixel data element itself need not be loaded).
        where: the path, for messages.
        limits: size limits to enforce.
        keyword: which pixel element the file holds (one of `PIXEL_KEYWORDS`).

    Raises:
        InputError: a tag is missing or inconsistent, a size exceeds ``limits`` (before any
            allocation), or the photometric interpretation is not supported.
    """
    rows = tag_int(ds, "Rows", where)
    columns = tag_int(ds, "Columns", where)
    limits.check_plane(rows, columns, where)
    frames = tag_int(ds, "NumberOfFrames", where, default=1)
    limits.check_slices(frames, where)
    samples = tag_int(ds, "SamplesPerPixel", where, default=1)
    if samples not in (1, 3):
        raise InputError(f"{where}: SamplesPerPixel {samples} is not supported (1 or 3)")
    default_bits = {"FloatPixelData": 32, "DoubleFloatPixelData": 64}.get(keyword)
    bits_allocated = tag_int(ds, "BitsAllocated", where, default=default_bits)
    if bits_allocated not in (1, 8, 16, 32, 64):
        raise InputError(f"{where}: BitsAllocated {bits_allocated} is not 1, 8, 16, 32 or 64")
    if default_bits is not None and bits_allocated != default_bits:
        raise InputError(f"{where}: BitsAllocated {bits_allocated} does not fit {keyword}")
    bits_stored = tag_int(ds, "BitsStored", where, default=bits_allocated)
    if not 1 <= bits_stored <= bits_allocated:
        raise InputError(
            f"{where}: BitsStored {bits_stored} is outside 1..BitsAllocated ({bits_allocated})"
        )
    representation = tag_int(ds, "PixelRepresentation", where, default=0)
    if representation not in (0, 1):
        raise InputError(f"{where}: PixelRepresentation {representation} is not 0 or 1")
    photometric = tag_str(ds, "PhotometricInterpretation", where).upper()
    if not photometric:
        photometric = "MONOCHROME2" if samples == 1 else "RGB"
    if photometric not in (*_MONOCHROME, _PALETTE, *_COLOUR):
        raise InputError(f"{where}: PhotometricInterpretation {photometric!r} is not supported")
    if (samples == 1) != (photometric in (*_MONOCHROME, _PALETTE)):
        raise InputError(
            f"{where}: PhotometricInterpretation {photometric} does not fit "
            f"SamplesPerPixel {samples}"
        )
    fmt = PixelFormat(
        rows=rows,
        columns=columns,
        frames=frames,
        samples=samples,
        bits_allocated=bits_allocated,
        bits_stored=bits_stored,
        signed=representation == 1,
        photometric=photometric,
        transfer_syntax=transfer_syntax(ds, where),
        keyword=keyword,
    )
    limits.check_size(
        fmt.voxels,
        fmt.decoded_bytes,
        where,
        f"{frames} x {rows} x {columns} x {samples} "
        "(NumberOfFrames x Rows x Columns x SamplesPerPixel)",
    )
    return fmt


def decode_frames(ds: Dataset, fmt: PixelFormat, where: str) -> tuple[np.ndarray, list[str]]:
    """Decode the pixel data of ``ds`` described by ``fmt``.

    Returns:
        The frames (see the module docstring for the shape) in stored values, and warnings
        (pixel data longer than the header describes).

    Raises:
        InputError: the pixel element is missing, shorter than the header promises, has a
            length that contradicts the transfer syntax, a compressed frame declares another
            size than the header, no decoder is installed for the transfer syntax, or the
            decoder fails.
    """
    if fmt.keyword not in ds:
        raise InputError(f"{where}: DICOM file holds no image (no {fmt.keyword})")
    element = ds[fmt.keyword]
    data = element.value
    if not isinstance(data, bytes | bytearray):
        raise InputError(f"{where}: {fmt.keyword} is not a byte string")
    warnings: list[str] = []
    if fmt.is_native:
        if element.is_undefined_length:
            raise InputError(
                f"{where}: {fmt.keyword} has an undefined length, which an uncompressed "
                f"transfer syntax ({fmt.transfer_syntax.name}) does not allow"
            )
        if len(data) < fmt.native_bytes:
            raise InputError(
                f"{where}: {fmt.keyword} is truncated: {len(data)} bytes of pixel data, the "
                "header (Rows x Columns x NumberOfFrames x SamplesPerPixel x BitsAllocated) "
                f"promises {fmt.native_bytes}"
            )
        if len(data) > fmt.native_bytes + 1:
            warnings.append(
                f"{fmt.keyword} holds {len(data) - fmt.native_bytes} bytes more than the "
                "header describes (NumberOfFrames may be wrong); the extra bytes are ignored"
            )
        fast = _native_view(data, fmt)
        if fast is not None:
            return fast, warnings
    else:
        if not element.is_undefined_length:
            raise InputError(
                f"{where}: {fmt.keyword} has a defined length, but a compressed transfer "
                f"syntax ({fmt.transfer_syntax.name}) needs encapsulated (undefined length) "
                "pixel data"
            )
        _check_decoder(fmt, where)
        _check_codestreams(data, fmt, where)
    return _pydicom_decode(ds, fmt, where), warnings


def to_physical(
    frame: np.ndarray,
    fmt: PixelFormat,
    slope: float,
    intercept: float,
    modality: str,
    out: np.ndarray,
) -> None:
    """Write ``frame`` (stored values) as float32 ``slope * value + intercept`` into ``out``.

    MONOCHROME1 frames are first inverted across the range BitsStored can encode, so that
    larger values are brighter as in MONOCHROME2 and the inversion is the same for every
    slice, except for `PHYSICAL_MODALITIES`, whose values keep their units.
    """
    if fmt.photometric == "MONOCHROME1" and modality not in PHYSICAL_MODALITIES:
        low, high = fmt.stored_range
        slope, intercept = -slope, (low + high) * slope + intercept
    if frame.dtype.itemsize > 2:  # 32/64-bit values: float32 arithmetic would round them
        np.copyto(out, frame.astype(np.float64) * slope + intercept, casting="unsafe")
    elif slope == 1.0:
        np.add(frame, np.float32(intercept), out=out, casting="unsafe")  # one pass
    else:
        np.multiply(frame, np.float32(slope), out=out, casting="unsafe")
        if intercept != 0.0:
            out += np.float32(intercept)


def _native_view(data: bytes | bytearray, fmt: PixelFormat) -> np.ndarray | None:
    """Little-endian grey-scale stored values straight from the bytes, or None."""
    if (
        fmt.transfer_syntax not in _NATIVE_LITTLE
        or fmt.keyword != "PixelData"
        or fmt.samples != 1
        or fmt.photometric not in _MONOCHROME
        or fmt.bits_allocated not in (8, 16, 32)
    ):
        return None
    kind = "i" if fmt.signed else "u"
    dtype = np.dtype(f"<{kind}{fmt.bits_allocated // 8}")
    count = fmt.frames * fmt.rows * fmt.columns
    values = np.frombuffer(data, dtype=dtype, count=count)
    shift = fmt.bits_allocated - fmt.bits_stored
    if shift:  # bits above BitsStored may hold overlays or garbage: mask or sign-extend
        values = (values << shift) >> shift if fmt.signed else values & ((1 << fmt.bits_stored) - 1)
    return values.reshape(fmt.frames, fmt.rows, fmt.columns)


def _check_decoder(fmt: PixelFormat, where: str) -> None:
    syntax = fmt.transfer_syntax
    try:
        decoder = pydicom.pixels.get_decoder(syntax)
    except NotImplementedError:
        raise InputError(
            f"{where}: no decoder for transfer syntax {syntax.name} ({syntax}); "
            "convert the file to an uncompressed or JPEG/JPEG-LS/JPEG 2000/RLE syntax"
        ) from None
    if not decoder.is_available:
        missing = "; ".join(decoder.missing_dependencies)
        raise InputError(
            f"{where}: transfer syntax {syntax.name} needs a decoder that is not installed "
            f"({missing})"
        )


def _check_codestreams(data: bytes | bytearray, fmt: PixelFormat, where: str) -> None:
    """Each compressed frame must declare the header's size before a decoder sizes a buffer."""
    syntax = fmt.transfer_syntax
    if syntax in _JPEG_FAMILY:
        reader, name = jpeg_frame_size, "JPEG"
    elif syntax in _J2K_FAMILY:
        reader, name = j2k_frame_size, "JPEG 2000"
    else:
        return  # RLE and others: the decoder sizes its output from Rows/Columns
    try:
        frames = generate_frames(bytes(data), number_of_frames=fmt.frames)
        for index, frame in enumerate(frames, start=1):
            if index > fmt.frames:
                break
            size: FrameSize | None = reader(frame)
            if size is None:
                raise InputError(f"{where}: compressed frame {index} holds no {name} frame header")
            if (size.rows, size.columns) != (fmt.rows, fmt.columns) or size.components > 4:
                raise InputError(
                    f"{where}: {name} frame {index} declares {size.rows} x {size.columns} x "
                    f"{size.components}, but Rows x Columns x SamplesPerPixel say "
                    f"{fmt.rows} x {fmt.columns} x {fmt.samples}"
                )
    except InputError:
        raise
    except Exception as exc:  # pydicom.encaps raises several types for broken items
        raise InputError(
            f"{where}: encapsulated {fmt.keyword} is malformed ({type(exc).__name__})"
        ) from None


def _pydicom_decode(ds: Dataset, fmt: PixelFormat, where: str) -> np.ndarray:
    try:
        array = pydicom.pixels.pixel_array(ds)
        if fmt.photometric == _PALETTE:
            array = pydicom.pixels.apply_color_lut(array, ds)
    except Exception as exc:  # decoders raise many types for broken data
        reason = " ".join(str(exc).split())  # one line: pydicom lists each plugin's failure
        if len(reason) > 240:
            reason = reason[:237] + "..."
        raise InputError(
            f"{where}: cannot decode {fmt.keyword} ({fmt.transfer_syntax.name}; "
            f"{type(exc).__name__}{': ' + reason if reason else ''})"
        ) from None
    colour = fmt.samples == 3 or fmt.photometric == _PALETTE
    expected = (fmt.frames, fmt.rows, fmt.columns) + ((3,) if colour else ())
    if array.shape != expected and array.size == math.prod(expected):
        array = array.reshape(expected)  # one frame comes back without its frame axis
    if array.shape != expected:
        raise InputError(f"{where}: decoded pixels are {array.shape}, the header says {expected}")
    if array.dtype.byteorder not in ("=", "|"):
        array = array.astype(array.dtype.newbyteorder("="))
    return array
