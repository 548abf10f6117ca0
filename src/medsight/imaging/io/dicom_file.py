"""Open one DICOM file safely: its header first, its pixel data only when asked.

`read_dicom_header` parses everything before the pixel data (pydicom's
``stop_before_pixels``) and remembers where the pixel element starts, so that a series
reader can scan, group and validate every file's header and then read each pixel element
exactly once, without parsing any file twice. `attach_pixels` reads that element from the
recorded offset.

Safety: the file size is checked against `ReadLimits.max_file_bytes` before reading; a
deflated dataset (whose inflated size the file does not state) is inflated once in a
streaming pass that only counts bytes, and refused if it would exceed
`ReadLimits.max_decoded_bytes`, before pydicom inflates it for real. Any exception from
parsing becomes an `InputError` naming the file: pydicom raises many types for bad bytes.
"""

from __future__ import annotations

import io
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

import pydicom
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.filereader import read_dataset
from pydicom.tag import BaseTag

from medsight.errors import InputError
from medsight.imaging.io.dicom_pixels import PIXEL_KEYWORDS
from medsight.imaging.io.limits import ReadLimits

_PIXEL_TAGS = {
    0x7FE00010: "PixelData",
    0x7FE00008: "FloatPixelData",
    0x7FE00009: "DoubleFloatPixelData",
}
_PREAMBLE = 128
_INFLATE_CHUNK = 1 << 20


@dataclass
class DicomHeader:
    """One file's header, and where its pixel data lies.

    Attributes:
        path: the file.
        dataset: every element before the pixel data (all of them for a deflated file).
        pixel_keyword: the pixel element that follows (`PIXEL_KEYWORDS`), None if none.
        pixel_offset: byte offset of that element in the file (unused when deflated).
        deflated: the dataset is deflate-compressed (pixel data already in ``dataset``).
    """

    path: Path
    dataset: Dataset
    pixel_keyword: str | None
    pixel_offset: int
    deflated: bool


def read_dicom_header(path: Path, limits: ReadLimits) -> DicomHeader | None:
    """The header of a DICOM Part 10 file, or None if the file is not DICOM.

    Raises:
        InputError: the file cannot be read, is over ``limits``, its deflated dataset would
            inflate beyond ``limits``, or it starts like DICOM but cannot be parsed.
    """
    where = str(path)
    try:
        with path.open("rb") as fp:
            head = fp.read(_PREAMBLE + 4)
            if len(head) < _PREAMBLE + 4 or head[_PREAMBLE:] != b"DICM":
                return None
            limits.check_file(path.stat().st_size, where)
            meta_end, deflated = _scan_file_meta(fp, where)
            if deflated:
                _check_inflated_size(fp, meta_end, limits, where)
            fp.seek(0)
            dataset = _parse(fp, where, stop_before_pixels=not deflated)
            offset = fp.tell()
            keyword = _pixel_keyword_at(fp, offset, dataset) if not deflated else None
    except OSError as exc:
        raise InputError(
            f"{where}: cannot read file ({exc.strerror or type(exc).__name__})"
        ) from None
    if deflated:
        keyword = next((k for k in PIXEL_KEYWORDS if k in dataset), None)
    if keyword is None and "SOPClassUID" not in dataset:
        # pydicom stops quietly at a premature end of file; every IOD has a SOPClassUID.
        raise InputError(f"{where}: not a readable DICOM file (no SOPClassUID; truncated?)")
    return DicomHeader(path, dataset, keyword, offset, deflated)


def attach_pixels(header: DicomHeader) -> Dataset:
    """``header.dataset`` with its pixel element read from the file (one read, one parse).

    The caller removes the element again (`detach_pixels`) once decoded, so that a series'
    headers do not keep every slice's bytes alive.

    Raises:
        InputError: the file holds no pixel data, or its pixel element cannot be parsed.
    """
    where = str(header.path)
    if header.pixel_keyword is None:
        raise InputError(f"{where}: DICOM file holds no image (no PixelData)")
    if header.deflated:
        return header.dataset
    implicit, little = header.dataset.original_encoding
    try:
        with header.path.open("rb") as fp:
            fp.seek(header.pixel_offset)
            head = fp.read(12)
            native = _native_element_header(head, bool(implicit), little is not False)
            if native is not None:
                # Defined length: the value is the next `length` bytes, read once, no parse.
                vr, start, length = native
                available = fp.seek(0, io.SEEK_END) - header.pixel_offset - start
                if length > available:
                    raise InputError(
                        f"{where}: {header.pixel_keyword} length field claims {length} bytes, "
                        f"the file holds {max(available, 0)} after it (truncated or corrupt)"
                    )
                fp.seek(header.pixel_offset + start)
                value = fp.read(length)
            else:
                fp.seek(header.pixel_offset)
                rest = fp.read()
    except OSError as exc:
        raise InputError(
            f"{where}: cannot read file ({exc.strerror or type(exc).__name__})"
        ) from None
    try:
        if native is not None:
            if vr == "OB or OW":
                vr = "OW" if int(header.dataset.get("BitsAllocated", 16) or 16) > 8 else "OB"
            element = DataElement(header.pixel_keyword, vr, value)
        else:
            pixels = read_dataset(io.BytesIO(rest), bool(implicit), little is not False)
            element = pixels[header.pixel_keyword]
    except Exception as exc:  # pydicom raises many types for broken elements
        raise InputError(
            f"{where}: {header.pixel_keyword} cannot be parsed ({type(exc).__name__})"
        ) from None
    header.dataset[header.pixel_keyword] = element
    return header.dataset


def detach_pixels(header: DicomHeader) -> None:
    """Drop the pixel element `attach_pixels` added (deflated datasets keep theirs)."""
    if not header.deflated and header.pixel_keyword and header.pixel_keyword in header.dataset:
        del header.dataset[header.pixel_keyword]


def read_dicom_dataset(path: Path, limits: ReadLimits) -> Dataset:
    """The whole dataset of one file, pixel data included (for tests and one-off reads).

    Raises:
        InputError: as `read_dicom_header`, or the file is not DICOM.
    """
    header = read_dicom_header(path, limits)
    if header is None:
        raise InputError(f"{path}: not a DICOM file")
    return attach_pixels(header) if header.pixel_keyword else header.dataset


def _parse(fp: BinaryIO, where: str, stop_before_pixels: bool) -> Dataset:
    try:
        dataset = pydicom.dcmread(fp, stop_before_pixels=stop_before_pixels)
    except Exception as exc:  # pydicom raises many types for bad bytes
        raise InputError(f"{where}: not a readable DICOM file ({type(exc).__name__})") from None
    return dataset


def _scan_file_meta(fp: BinaryIO, where: str) -> tuple[int, bool]:
    """(end of the file meta group, whether the transfer syntax is deflate).

    Parsed with pydicom as its own reader does (explicit VR little endian, until the first
    element outside group 0002), so the answer cannot differ from what ``dcmread`` will do;
    the group length (0002,0000) is not trusted.
    """
    fp.seek(_PREAMBLE + 4)
    try:
        meta = read_dataset(fp, False, True, stop_when=_outside_group_2)
        syntax = str(meta.get("TransferSyntaxUID", "") or "")
    except Exception as exc:  # pydicom raises many types for bad bytes
        raise InputError(
            f"{where}: not a readable DICOM file (file meta: {type(exc).__name__})"
        ) from None
    return fp.tell(), syntax == pydicom.uid.DeflatedExplicitVRLittleEndian


def _outside_group_2(tag: BaseTag, vr: str | None, length: int) -> bool:
    return tag.group != 2


def _check_inflated_size(fp: BinaryIO, start: int, limits: ReadLimits, where: str) -> None:
    """Count the bytes the deflated dataset inflates to, keeping none of them."""
    fp.seek(start)
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    total = 0
    try:
        while not inflater.eof and (chunk := fp.read(_INFLATE_CHUNK)):
            pending = chunk
            while pending and not inflater.eof:
                total += len(inflater.decompress(pending, _INFLATE_CHUNK))
                if total > limits.max_decoded_bytes:
                    raise InputError(
                        f"{where}: deflated dataset inflates beyond the limit of "
                        f"{limits.max_decoded_bytes} bytes (ReadLimits.max_decoded_bytes)"
                    )
                pending = inflater.unconsumed_tail
    except zlib.error:
        raise InputError(f"{where}: deflated dataset is corrupt (zlib error)") from None


def _native_element_header(
    head: bytes, implicit: bool, little: bool
) -> tuple[str, int, int] | None:
    """(VR, value offset, length) of a pixel element with a defined length, else None.

    PS3.5 7.1: implicit VR is tag, 4-byte length; explicit VR for OB/OW/OF/OD/UN is tag,
    VR, 2 reserved bytes, 4-byte length. An undefined length (encapsulated pixel data) or
    anything unexpected returns None, and pydicom parses the element instead.
    """
    if len(head) < 12:
        return None
    order: Literal["little", "big"] = "little" if little else "big"
    if implicit:
        vr, start, length = "OB or OW", 8, int.from_bytes(head[4:8], order)
    else:
        vr = head[4:6].decode("ascii", errors="replace")
        if vr not in ("OB", "OW", "OF", "OD", "UN"):
            return None
        vr, start, length = ("OW" if vr == "UN" else vr), 12, int.from_bytes(head[8:12], order)
    if length == 0xFFFFFFFF:
        return None
    return vr, start, length


def _pixel_keyword_at(fp: BinaryIO, offset: int, dataset: Dataset) -> str | None:
    fp.seek(offset)
    tag = fp.read(4)
    if len(tag) < 4:
        return None
    _, little = dataset.original_encoding
    big = little is False
    group = int.from_bytes(tag[:2], "big" if big else "little")
    element = int.from_bytes(tag[2:], "big" if big else "little")
    return _PIXEL_TAGS.get(group << 16 | element)
