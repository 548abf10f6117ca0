"""A corpus of malformed DICOM files, each of which must give one clear `InputError`.

Every case is built here from one valid slice (or the whole tiny series) written by
medsight's own writer: truncated at many offsets, garbage bytes, wrong VRs, lying lengths,
missing pixel data, absurd dimensions, non-finite or degenerate geometry, broken
compressed and deflated data, inconsistent series. For each, the reader must raise
`InputError` (never another exception, never hang: a per-case alarm fails the test after
`CASE_TIMEOUT_S`), with a one-line message that names the file and holds no patient data.
A short hypothesis run mutates random bytes of a valid file: the read gives a `Volume` or an
`InputError`, nothing else.
"""

from __future__ import annotations

import contextlib
import io
import re
import signal
import tracemalloc
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.data import get_testdata_file
from pydicom.dataelem import DataElement
from pydicom.uid import UID

from medsight.errors import InputError
from medsight.imaging.io.ct_writer import StudyIdentity
from medsight.imaging.io.dicom_series import read_dicom_series
from medsight.imaging.io.limits import ReadLimits
from medsight.imaging.io.volume import Volume

CASE_TIMEOUT_S = 5.0
Files = bytes | list[bytes]  # one file, or a series folder


@dataclass(frozen=True)
class Case:
    name: str
    make: Callable[[list[bytes]], Files]  # from the valid series' files (sorted by name)
    match: str  # what the message must say
    limits: ReadLimits = ReadLimits()


def _first(files: list[bytes]) -> bytes:
    return files[0]


def _dataset(data: bytes) -> pydicom.Dataset:
    return pydicom.dcmread(io.BytesIO(data))


def _saved(ds: pydicom.Dataset) -> bytes:
    out = io.BytesIO()
    ds.save_as(out)
    return out.getvalue()


def _set(**changes: object) -> Callable[[list[bytes]], bytes]:
    """Builder: the first slice with header values changed (None deletes the element)."""

    def make(files: list[bytes]) -> bytes:
        ds = _dataset(files[0])
        for keyword, value in changes.items():
            if value is None:
                delattr(ds, keyword)
            else:
                setattr(ds, keyword, value)
        return _saved(ds)

    return make


def _raw(keyword: str, placeholder: str, raw: bytes) -> Callable[[list[bytes]], bytes]:
    """Builder: a value pydicom refuses to write (``"abc"`` as DS): write the unique string
    ``placeholder`` (backslash-separated values), then replace its bytes with ``raw``."""

    def make(files: list[bytes]) -> bytes:
        values = placeholder.split("\\")
        data = _set(**{keyword: values if len(values) > 1 else placeholder})(files)
        old = placeholder.encode("ascii")
        assert len(raw) <= len(old) and data.count(old) == 1, (old, raw)
        return data.replace(old, raw.ljust(len(old), b" "))

    return make


def _wide(**values: int) -> Callable[[list[bytes]], bytes]:
    """Builder: US elements written as UL (a wrong VR) so they can hold values > 65535."""

    def make(files: list[bytes]) -> bytes:
        ds = _dataset(files[0])
        for keyword, value in values.items():
            ds[keyword] = DataElement(keyword, "UL", value)
        return _saved(ds)

    return make


def _syntax(name: str, uid: str) -> Callable[[list[bytes]], bytes]:
    """Builder: a pydicom test file whose TransferSyntaxUID is replaced at the byte level
    (pydicom will not write native pixel data under a compressed syntax)."""

    def make(files: list[bytes]) -> bytes:
        data = bytearray(Path(get_testdata_file(name)).read_bytes())
        at = data.find(b"\x02\x00\x10\x00UI")
        length = int.from_bytes(data[at + 6 : at + 8], "little")
        value = uid.encode("ascii")
        value += b"\x00" * (len(value) % 2)
        data[at + 6 : at + 8 + length] = len(value).to_bytes(2, "little") + value
        group = int.from_bytes(data[140:144], "little") + len(value) - length
        data[140:144] = group.to_bytes(4, "little")
        return bytes(data)

    return make


def _patch(find: bytes, offset: int, new: bytes) -> Callable[[list[bytes]], bytes]:
    """Builder: overwrite bytes at ``offset`` from the first occurrence of ``find``."""

    def make(files: list[bytes]) -> bytes:
        data = bytearray(files[0])
        at = data.find(find)
        assert at >= 0, find
        data[at + offset : at + offset + len(new)] = new
        return bytes(data)

    return make


def _truncate(size: int) -> Callable[[list[bytes]], bytes]:
    return lambda files: files[0][:size]


def _garbage(size: int, seed: int, dicm: bool = False) -> Callable[[list[bytes]], bytes]:
    def make(files: list[bytes]) -> bytes:
        data = bytearray(np.random.default_rng(seed).integers(0, 256, size, np.uint8).tobytes())
        if dicm and size >= 132:
            data[128:132] = b"DICM"
        return bytes(data)

    return make


def _series(slice_index: int, **changes: object) -> Callable[[list[bytes]], list[bytes]]:
    """Builder: the whole series with one slice's header values changed (a callable value
    is given the series' files)."""

    def make(files: list[bytes]) -> list[bytes]:
        out = list(files)
        ds = _dataset(out[slice_index])
        for keyword, value in changes.items():
            value = value(files) if callable(value) else value
            if value is None:
                delattr(ds, keyword)
            else:
                setattr(ds, keyword, value)
        out[slice_index] = _saved(ds)
        return out

    return make


def _compressed(name: str, change: Callable[[pydicom.Dataset], None]) -> Callable[..., bytes]:
    def make(files: list[bytes]) -> bytes:
        ds = pydicom.dcmread(get_testdata_file(name))
        change(ds)
        return _saved(ds)

    return make


def _fragment_edit(edit: Callable[[bytearray], None]) -> Callable[[pydicom.Dataset], None]:
    def change(ds: pydicom.Dataset) -> None:
        data = bytearray(ds.PixelData)
        edit(data)
        ds.PixelData = bytes(data)

    return change


def _deflated(corrupt: bool) -> Callable[[list[bytes]], bytes]:
    def make(files: list[bytes]) -> bytes:
        ds = _dataset(files[0])
        ds.file_meta.TransferSyntaxUID = pydicom.uid.DeflatedExplicitVRLittleEndian
        if not corrupt:  # a bomb: 8 MiB of zeros in a private element
            ds.add_new(0x00091010, "OB", b"\x00" * (8 * 2**20))
        data = bytearray(_saved(ds))
        if corrupt:
            end = 132 + 12 + int.from_bytes(data[140:144], "little")
            data[end + 10 : end + 40] = b"\xff" * 30
        return bytes(data)

    return make


def _undefined_sequence_without_delimiter(files: list[bytes]) -> bytes:
    data = files[0]
    at = data.find(b"\x28\x00\x10\x00US")  # before Rows: a sequence that never ends
    sequence = b"\x08\x00\x15\x11SQ\x00\x00\xff\xff\xff\xff" + b"\xfe\xff\x00\xe0\xff\xff\xff\xff"
    return data[:at] + sequence + data[at:]


PIXEL_TAG = b"\xe0\x7f\x10\x00OW"
ROWS = b"\x28\x00\x10\x00US"
SPACING = b"\x28\x00\x30\x00DS"
IOP = b"\x20\x00\x37\x00DS"
NAME = b"\x10\x00\x10\x00PN"
SLOPE = b"\x28\x00\x53\x10DS"
LIMIT_MSG = r"exceeds the limit"
TRUNCATED_MSG = (
    r"not a DICOM file|not a readable DICOM file|truncated|holds no image|missing \w+|"
    r"cannot be parsed|not (an integer|numeric)|has \d+ values"
)


def _cases() -> list[Case]:
    cases: list[Case] = []
    # Truncated at many offsets: preamble, meta, header elements, pixel data.
    base_size, pixel_at = 2942, 1394  # size of the tiny series' first file, PixelData offset
    offsets = set(range(0, base_size - 1, 29)) | {0, 1, 127, 128, 131, 132, 133, 143, 144}
    offsets |= {pixel_at + d for d in (-1, 0, 2, 4, 6, 8, 11, 12, 13)} | {base_size - 2}
    for size in sorted(offsets):
        cases.append(Case(f"truncated-at-{size}", _truncate(size), TRUNCATED_MSG))
    # Garbage.
    for size, seed in ((0, 0), (1, 1), (100, 2), (132, 3), (4096, 4), (20000, 5)):
        cases.append(Case(f"garbage-{size}", _garbage(size, seed), r"not a DICOM file"))
    for size, seed in ((132, 6), (200, 7), (4096, 8), (20000, 9)):
        cases.append(
            Case(f"garbage-with-DICM-{size}", _garbage(size, seed, dicm=True), r"not a readable")
        )
    cases.append(
        Case(
            "garbage-after-meta",
            lambda f: f[0][:400] + _garbage(3000, 10)(f),
            r"not a readable|holds no image|cannot be parsed|missing",
        )
    )
    # Wrong VRs.
    for vr in (b"SQ", b"DS", b"UI", b"OB", b"XX", b"FD"):
        cases.append(Case(f"Rows-as-{vr.decode()}", _patch(ROWS, 4, vr), TRUNCATED_MSG + "|Rows"))
    for vr in (b"US", b"SQ", b"FD", b"OB"):
        cases.append(
            Case(
                f"PixelSpacing-as-{vr.decode()}", _patch(SPACING, 4, vr), TRUNCATED_MSG + "|PixelSp"
            )
        )
    for vr in (b"OB", b"SQ", b"UL"):
        cases.append(
            Case(f"IOP-as-{vr.decode()}", _patch(IOP, 4, vr), TRUNCATED_MSG + "|ImageOrient")
        )
    cases.append(
        Case("RescaleSlope-as-SQ", _patch(SLOPE, 4, b"SQ"), TRUNCATED_MSG + "|RescaleSlope")
    )
    cases.append(Case("PixelData-as-SQ", _patch(PIXEL_TAG, 4, b"SQ"), r"PixelData|not a read"))
    # Lying lengths.
    cases.append(
        Case("PatientName-length-32767", _patch(NAME, 6, b"\xff\x7f"), TRUNCATED_MSG + "|Rows")
    )
    cases.append(Case("Rows-length-4", _patch(ROWS, 6, b"\x04\x00"), TRUNCATED_MSG + "|Rows"))
    cases.append(Case("Rows-length-0", _patch(ROWS, 6, b"\x00\x00"), TRUNCATED_MSG + "|Rows"))
    cases.append(
        Case(
            "PixelData-length-huge",
            _patch(PIXEL_TAG, 8, b"\xf0\xff\xff\xff"),
            r"PixelData length field claims 4294967280 bytes, the file holds 1536",
        )
    )
    cases.append(Case("PixelData-length-100", _patch(PIXEL_TAG, 8, b"\x64\x00\x00\x00"), "trunc"))
    cases.append(
        Case(
            "PixelData-length-undefined",
            _patch(PIXEL_TAG, 8, b"\xff\xff\xff\xff"),
            r"undefined length|cannot be parsed",
        )
    )
    cases.append(
        Case("sequence-without-delimiter", _undefined_sequence_without_delimiter, TRUNCATED_MSG)
    )
    # Missing pixel data and missing required tags.
    cases.append(Case("no-PixelData", _set(PixelData=None), r"holds no image \(no PixelData\)"))
    for keyword in ("Rows", "Columns"):
        cases.append(Case(f"no-{keyword}", _set(**{keyword: None}), rf"missing {keyword}"))
    # Absurd dimensions: must fail from the header, before any allocation.
    absurd = {
        "Rows-0": ({"Rows": 0}, r"Rows is 0"),
        "Columns-65535": ({"Columns": 65535}, r"Columns 65535 exceeds"),
        "frames-1e9": ({"NumberOfFrames": "1000000000"}, r"NumberOfFrames 1000000000 exceeds"),
        "frames-negative": ({"NumberOfFrames": "-3"}, r"NumberOfFrames is -3"),
        "BitsAllocated-0": ({"BitsAllocated": 0}, r"BitsAllocated 0 is not"),
        "BitsAllocated-12": ({"BitsAllocated": 12}, r"BitsAllocated 12 is not"),
        "BitsStored-0": ({"BitsStored": 0}, r"BitsStored 0 is outside"),
        "BitsStored-17": ({"BitsStored": 17}, r"BitsStored 17 is outside"),
        "SamplesPerPixel-0": ({"SamplesPerPixel": 0}, r"SamplesPerPixel 0 is not supported"),
        "SamplesPerPixel-4": ({"SamplesPerPixel": 4}, r"SamplesPerPixel 4 is not supported"),
        "SamplesPerPixel-3-grey": ({"SamplesPerPixel": 3}, r"does not fit SamplesPerPixel"),
        "PixelRepresentation-2": ({"PixelRepresentation": 2}, r"PixelRepresentation 2 is not"),
        "Photometric-unknown": ({"PhotometricInterpretation": "HSV"}, r"'HSV' is not supported"),
        "many-frames-tiny-data": ({"NumberOfFrames": "4000"}, r"truncated"),
        "big-plane-tiny-data": ({"Rows": 16000, "Columns": 16000}, r"truncated"),
    }
    for name, (changes, match) in absurd.items():
        cases.append(Case(name, _set(**changes), match))
    cases += [
        Case("Rows-100000", _wide(Rows=100000, Columns=100000), r"Rows 100000 exceeds the limit"),
        Case("Columns-100000", _wide(Columns=100000), r"Columns 100000 exceeds the limit"),
        Case(
            "frames-text", _raw("NumberOfFrames", "97531", b"1A"), r"NumberOfFrames is not an int"
        ),
    ]
    # Non-finite or degenerate geometry and rescale.
    geometry = {
        "PixelSpacing-nan": ("PixelSpacing", ["nan", "0.7"], r"PixelSpacing holds a non-finite"),
        "PixelSpacing-inf": ("PixelSpacing", ["0.7", "inf"], r"PixelSpacing holds a non-finite"),
        "PixelSpacing--inf": ("PixelSpacing", ["-inf", "1"], r"PixelSpacing holds a non-finite"),
        "PixelSpacing-zero": ("PixelSpacing", ["0", "0.7"], r"PixelSpacing must be positive"),
        "PixelSpacing-negative": ("PixelSpacing", ["-0.7", "0.7"], r"PixelSpacing must be posi"),
        "PixelSpacing-one-value": ("PixelSpacing", "0.7", r"PixelSpacing has 1 values"),
        "PixelSpacing-three": ("PixelSpacing", ["1", "1", "1"], r"PixelSpacing has 3 values"),
        "IOP-nan": ("ImageOrientationPatient", ["nan", 0, 0, 0, 1, 0], r"non-finite"),
        "IOP-zeros": ("ImageOrientationPatient", [0] * 6, r"not orthonormal"),
        "IOP-parallel": ("ImageOrientationPatient", [1, 0, 0, 1, 0, 0], r"not orthonormal"),
        "IOP-short": ("ImageOrientationPatient", [1, 0, 0, 0, 0.5, 0], r"not orthonormal"),
        "IOP-five-values": ("ImageOrientationPatient", [1, 0, 0, 0, 1], r"has 5 values"),
        "IPP-nan": ("ImagePositionPatient", ["nan", 0, 0], r"ImagePositionPatient holds a non"),
        "IPP-inf": ("ImagePositionPatient", [0, "inf", 0], r"ImagePositionPatient holds a non"),
        "IPP-two-values": ("ImagePositionPatient", [0, 0], r"ImagePositionPatient has 2 values"),
        "SliceThickness-nan": ("SliceThickness", "nan", r"SliceThickness holds a non-finite"),
        "SliceThickness-negative": ("SliceThickness", "-2.5", r"SliceThickness must be positi"),
        "SpacingBetweenSlices-0": ("SpacingBetweenSlices", "0", r"SpacingBetweenSlices must"),
        "RescaleSlope-nan": ("RescaleSlope", "nan", r"RescaleSlope holds a non-finite"),
        "RescaleSlope-inf": ("RescaleSlope", "inf", r"RescaleSlope holds a non-finite"),
        "RescaleSlope-zero": ("RescaleSlope", "0", r"RescaleSlope \(or DoseGridScaling\) is zero"),
        "RescaleIntercept-inf": ("RescaleIntercept", "-inf", r"RescaleIntercept holds a non-fin"),
    }
    for name, (keyword, value, match) in geometry.items():
        cases.append(Case(name, _set(**{keyword: value}), match))
    cases += [
        Case(
            "PixelSpacing-text",
            _raw("PixelSpacing", "9.87654\\0.7", b"abc\\0.7"),
            r"PixelSpacing is not numeric",
        ),
        Case(
            "IPP-text",
            _raw("ImagePositionPatient", "9.87654\\0\\0", b"x\\0\\0"),
            r"ImagePositionPatient is not numeric",
        ),
        Case(
            "RescaleSlope-text", _raw("RescaleSlope", "9.87654", b"abc"), r"RescaleSlope is not n"
        ),
        Case("RescaleSlope-two", _raw("RescaleSlope", "9.87654", b"1\\2"), r"RescaleSlope has 2"),
    ]
    # Inconsistent series (folders).
    cases += [
        Case(
            "series-duplicate-position",
            _series(3, ImagePositionPatient=lambda files: _dataset(files[4]).ImagePositionPatient),
            r"share one ImagePositionPatient",
        ),
        Case(
            "series-slice-size",
            _series(2, Rows=16, PixelData=b"\x00" * 16 * 32 * 2),
            r"slice is 16x32, the series' first slice is 24x32",
        ),
        Case(
            "series-orientation-differs",
            _series(4, ImageOrientationPatient=[0, 1, 0, 1, 0, 0]),
            r"ImageOrientationPatient differs from the series'",
        ),
        Case(
            "series-spacing-differs",
            _series(1, PixelSpacing=["0.9", "0.8"]),
            r"PixelSpacing differs from the series'",
        ),
        Case(
            "series-missing-position",
            _series(5, ImagePositionPatient=None),
            r"missing ImagePositionPatient",
        ),
        Case(
            "series-spacing-nan-one-slice",
            _series(5, PixelSpacing=["nan", "0.8"]),
            r"PixelSpacing holds a non-finite",
        ),
        Case(
            "series-colour-and-grey",
            _series(
                1,
                SamplesPerPixel=3,
                PhotometricInterpretation="RGB",
                PixelData=b"\x00" * 24 * 32 * 6,
            ),
            r"colour and grey-scale slices",
        ),
        Case(
            "series-over-slice-limit",
            lambda f: list(f),
            r"slice count 6 exceeds",
            ReadLimits(max_slices=5),
        ),
        Case(
            "series-over-voxel-limit", lambda f: list(f), r"max_voxels", ReadLimits(max_voxels=4000)
        ),
    ]
    # Compressed data.
    jls, j2k, rle = "MR_small_jpeg_ls_lossless.dcm", "MR_small_jp2klossless.dcm", "MR_small_RLE.dcm"

    def sof_dims(data: bytearray) -> None:
        at = data.find(b"\xff\xf7")
        data[at + 5 : at + 9] = (60000).to_bytes(2, "big") * 2

    def no_soi(data: bytearray) -> None:
        at = data.find(b"\xff\xd8")
        data[at : at + 2] = b"\x00\x00"

    def siz_dims(data: bytearray) -> None:
        at = data.find(b"\xff\x4f\xff\x51")
        data[at + 8 : at + 16] = (70000).to_bytes(4, "big") * 2

    def truncate_fragment(data: bytearray) -> None:
        del data[len(data) // 2 :]

    def rle_segments(data: bytearray) -> None:
        at = data.find(b"\xfe\xff\x00\xe0", 8)  # first fragment after the offset table
        data[at + 8 : at + 12] = (15).to_bytes(4, "little")

    def mpeg2(ds: pydicom.Dataset) -> None:
        ds.file_meta.TransferSyntaxUID = UID("1.2.840.10008.1.2.4.100")

    cases += [
        Case("jpegls-sof-60000", _compressed(jls, _fragment_edit(sof_dims)), r"declares 60000"),
        Case("jpegls-no-soi", _compressed(jls, _fragment_edit(no_soi)), r"no JPEG frame header"),
        Case("j2k-siz-70000", _compressed(j2k, _fragment_edit(siz_dims)), r"declares 70000"),
        Case(
            "j2k-truncated",
            _compressed(j2k, _fragment_edit(truncate_fragment)),
            r"cannot decode|malformed|no JPEG 2000",
        ),
        Case(
            "rle-segment-count",
            _compressed(rle, _fragment_edit(rle_segments)),
            r"cannot decode|malformed",
        ),
        Case(
            "rle-truncated",
            _compressed(rle, _fragment_edit(truncate_fragment)),
            r"cannot decode|malformed",
        ),
        Case("no-decoder-mpeg2", _compressed(jls, mpeg2), r"no decoder for transfer syntax MPEG2"),
        Case(
            "native-under-jpegls-syntax",
            _syntax("MR_small.dcm", pydicom.uid.JPEGLSLossless),
            r"needs encapsulated",
        ),
        Case(
            "decoded-size-over-limit",
            _compressed(jls, lambda ds: None),
            r"max_decoded_bytes",
            ReadLimits(max_decoded_bytes=4096),
        ),
        Case("deflate-corrupt", _deflated(corrupt=True), r"deflated dataset is corrupt"),
        Case(
            "deflate-bomb",
            _deflated(corrupt=False),
            r"inflates beyond the limit",
            ReadLimits(max_decoded_bytes=2**20),
        ),
        Case("file-over-limit", _first, r"max_file_bytes", ReadLimits(max_file_bytes=1000)),
        Case(
            "unknown-transfer-syntax",
            _syntax("MR_small.dcm", "1.2.3.4.5"),
            r"needs encapsulated|no decoder",
        ),
        Case("meta-without-transfer-syntax", _syntax("MR_small.dcm", ""), TRUNCATED_MSG + "|Tr"),
    ]
    return cases


CASES = _cases()
#: How many malformed inputs the corpus tries (reported by `test_corpus_size`).
N_MALFORMED_CASES = len(CASES)


@contextlib.contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    def expire(signum: int, frame: object) -> None:
        raise TimeoutError(f"read did not finish within {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(autouse=True)
def _quiet_pydicom() -> Iterator[None]:
    """pydicom warns about every invalid value; here they are invalid on purpose."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        yield


@pytest.fixture(scope="module")
def valid_files(tiny_series_master: Path) -> list[bytes]:
    return [p.read_bytes() for p in sorted(tiny_series_master.glob("*.dcm"))]


def _write(files: Files, folder: Path) -> Path:
    if isinstance(files, bytes):
        path = folder / "case.dcm"
        path.write_bytes(files)
        return path
    series = folder / "series"
    series.mkdir()
    for n, data in enumerate(files):
        (series / f"IM{n:04d}.dcm").write_bytes(data)
    return series


def _assert_clear(message: str, path: Path, identity: StudyIdentity) -> None:
    assert "\n" not in message and "Traceback" not in message
    assert message.startswith(str(path)), message  # names the file (or folder) first
    for secret in (identity.patient_name, identity.patient_id, identity.birth_date):
        assert secret not in message


def test_corpus_size() -> None:
    print(f"\nmalformed DICOM cases: {N_MALFORMED_CASES}")
    assert N_MALFORMED_CASES >= 150
    assert len({c.name for c in CASES}) == N_MALFORMED_CASES


def test_valid_base_reads(valid_files: list[bytes], tmp_path: Path) -> None:
    """The corpus is built from files that do read: each failure is the mutation's."""
    assert len(valid_files[0]) == 2942 and valid_files[0].find(PIXEL_TAG) == 1394
    assert read_dicom_series(_write(valid_files[0], tmp_path)).shape == (1, 24, 32)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_malformed_input_gives_clear_input_error(
    case: Case, valid_files: list[bytes], tmp_path: Path, tiny_identity: StudyIdentity
) -> None:
    path = _write(case.make(valid_files), tmp_path)
    with _deadline(CASE_TIMEOUT_S), pytest.raises(InputError) as info:
        read_dicom_series(path, limits=case.limits, workers=1)
    message = str(info.value)
    assert re.search(case.match, message), message
    _assert_clear(message, path, tiny_identity)


def test_absurd_dimensions_fail_without_allocating(
    valid_files: list[bytes], tmp_path: Path
) -> None:
    path = _write(_set(Rows=16384, Columns=16384, NumberOfFrames="4096")(valid_files), tmp_path)
    tracemalloc.start()
    try:
        with pytest.raises(InputError, match=r"exceeds the limit"):
            read_dicom_series(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20  # a 2**40-voxel claim costs a few MB of parsing, no buffer


@settings(
    max_examples=60,
    deadline=2000,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    mutations=st.lists(
        st.tuples(st.integers(0, 2941), st.integers(0, 255)), min_size=1, max_size=8
    ),
    cut=st.one_of(st.none(), st.integers(0, 2941)),
)
def test_random_byte_mutations_give_volume_or_input_error(
    mutations: list[tuple[int, int]],
    cut: int | None,
    valid_files: list[bytes],
    tmp_path: Path,
) -> None:
    data = bytearray(valid_files[0])
    for position, value in mutations:
        data[position] = value
    path = tmp_path / "mutated.dcm"
    path.write_bytes(bytes(data[:cut]) if cut is not None else bytes(data))
    try:
        with _deadline(CASE_TIMEOUT_S):
            volume = read_dicom_series(path, workers=1)
    except InputError as exc:
        assert "\n" not in str(exc) and str(exc).startswith(str(path))
        return
    assert isinstance(volume, Volume)
    assert np.all(np.isfinite(volume.spacing_mm)) and min(volume.spacing_mm) > 0
    assert np.all(np.isfinite(volume.affine_ras()))
