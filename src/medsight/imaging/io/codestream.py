"""The frame size a JPEG, JPEG-LS or JPEG 2000 codestream declares, read from its markers.

A decoder sizes its output from the codestream's own header, not from the DICOM Rows and
Columns around it, so a 2 kB fragment declaring a 60000 x 60000 frame makes it allocate
gigabytes before failing. Reading the declared size first lets the DICOM reader refuse such
a frame. Hand-written because no decoder offers this for every plugin pydicom may pick
(pylibjpeg, pyjpegls, Pillow), and the two marker layouts are short and fixed by
ITU-T T.81 (B.2.2, SOFn; T.87 reuses it as SOF55) and ITU-T T.800 (A.5.1, SIZ).
"""

from __future__ import annotations

from dataclasses import dataclass

# SOF0-3, 5-7, 9-11, 13-15 (T.81) and SOF55 (JPEG-LS, T.87).
_SOF_MARKERS = frozenset(
    [0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF, 0xF7]
)
_STANDALONE = frozenset([0x01, 0xD8, *range(0xD0, 0xD8)])
_SOS = 0xDA
_J2K_SOC_SIZ = b"\xff\x4f\xff\x51"
#: JP2 boxes come before the codestream; search this far for it.
_JP2_SEARCH_BYTES = 65536


@dataclass(frozen=True)
class FrameSize:
    """What a codestream says it will decode to."""

    rows: int
    columns: int
    components: int


def jpeg_frame_size(frame: bytes) -> FrameSize | None:
    """The size in the first SOFn (or JPEG-LS SOF55) marker, or None if there is none.

    Walks marker segments from SOI; stops at the first SOS, since a frame header must
    precede the first scan.
    """
    if frame[:2] != b"\xff\xd8":
        return None
    i, n = 2, len(frame)
    while i + 4 <= n:
        if frame[i] != 0xFF:
            return None
        marker = frame[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in _STANDALONE:
            i += 2
            continue
        length = int.from_bytes(frame[i + 2 : i + 4], "big")
        if marker in _SOF_MARKERS:
            if i + 10 > n or length < 8:
                return None
            rows = int.from_bytes(frame[i + 5 : i + 7], "big")
            columns = int.from_bytes(frame[i + 7 : i + 9], "big")
            return FrameSize(rows, columns, frame[i + 9])
        if marker == _SOS or length < 2:
            return None
        i += 2 + length
    return None


def j2k_frame_size(frame: bytes) -> FrameSize | None:
    """The image size in a JPEG 2000 (or HTJ2K) SIZ marker, or None if there is none.

    Accepts a bare codestream (SOC first, as DICOM requires) or one inside JP2 boxes.
    """
    start = 0 if frame[:4] == _J2K_SOC_SIZ else frame.find(_J2K_SOC_SIZ, 0, _JP2_SEARCH_BYTES)
    if start < 0 or start + 42 > len(frame):
        return None
    siz = start + 4  # Lsiz
    x_siz = int.from_bytes(frame[siz + 4 : siz + 8], "big")
    y_siz = int.from_bytes(frame[siz + 8 : siz + 12], "big")
    x_off = int.from_bytes(frame[siz + 12 : siz + 16], "big")
    y_off = int.from_bytes(frame[siz + 16 : siz + 20], "big")
    components = int.from_bytes(frame[siz + 36 : siz + 38], "big")
    if x_siz <= x_off or y_siz <= y_off:
        return FrameSize(0, 0, components)
    return FrameSize(y_siz - y_off, x_siz - x_off, components)
