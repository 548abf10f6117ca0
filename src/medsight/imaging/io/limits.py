"""Size limits every reader checks from headers before it allocates a pixel buffer.

A header is a claim, not a fact: a DICOM file of 200 bytes can say Rows=Columns=100000, a
NIfTI header can claim a 10^12-voxel image, a JPEG 2000 codestream can declare a frame far
larger than the DICOM header around it. Readers compare every such claim with a
`ReadLimits` first and refuse, with an `InputError` naming the tag or field, before any array
of that size exists. The defaults admit any realistic clinical image (a 4096-slice,
16384 x 16384 plane, 2**30-voxel volume); pass a smaller `ReadLimits` to a reader to be
stricter (a web service should).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from medsight.errors import InputError


@dataclass(frozen=True)
class ReadLimits:
    """Upper bounds on what one read may allocate.

    Attributes:
        max_voxels: voxels in one image (slices x rows x columns x samples).
        max_slices: slices in a series, or frames in one multi-frame file.
        max_rows: image rows (DICOM Rows, PNG height, NIfTI dim 2).
        max_columns: image columns (DICOM Columns, PNG width, NIfTI dim 1).
        max_decoded_bytes: bytes of decoded (decompressed, inflated) pixel data in one read.
        max_file_bytes: size of one file read into memory.
        max_files: files examined when scanning a folder for DICOM series.
    """

    max_voxels: int = 2**30
    max_slices: int = 4096
    max_rows: int = 16384
    max_columns: int = 16384
    max_decoded_bytes: int = 2**32
    max_file_bytes: int = 2**32
    max_files: int = 100_000

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"ReadLimits.{f.name} must be a positive integer, got {value!r}")

    def check_plane(
        self,
        rows: int,
        columns: int,
        where: str,
        rows_tag: str = "Rows",
        columns_tag: str = "Columns",
    ) -> None:
        """Refuse a plane that is empty or larger than the row/column limits.

        Raises:
            InputError: a dimension is not positive or exceeds its limit (names the tag).
        """
        for tag, value, limit, name in (
            (rows_tag, rows, self.max_rows, "max_rows"),
            (columns_tag, columns, self.max_columns, "max_columns"),
        ):
            if value < 1:
                raise InputError(f"{where}: {tag} is {value}; it must be at least 1")
            if value > limit:
                raise InputError(
                    f"{where}: {tag} {value} exceeds the limit of {limit} (ReadLimits.{name})"
                )

    def check_slices(self, n_slices: int, where: str, tag: str = "NumberOfFrames") -> None:
        """Refuse a stack with no slices or more than ``max_slices``.

        Raises:
            InputError: ``n_slices`` is not positive or exceeds the limit (names ``tag``).
        """
        if n_slices < 1:
            raise InputError(f"{where}: {tag} is {n_slices}; it must be at least 1")
        if n_slices > self.max_slices:
            raise InputError(
                f"{where}: {tag} {n_slices} exceeds the limit of {self.max_slices} "
                "(ReadLimits.max_slices)"
            )

    def check_size(self, voxels: int, decoded_bytes: int, where: str, what: str) -> None:
        """Refuse an image whose voxel count or decoded byte size is over the limits.

        Args:
            voxels: voxels the image would hold (samples included).
            decoded_bytes: bytes its decoded pixel data would take.
            where: the path, for the message.
            what: how the size was derived, e.g. ``"96 x 512 x 512 (slices x Rows x Columns)"``.

        Raises:
            InputError: either count is over its limit.
        """
        if voxels > self.max_voxels:
            raise InputError(
                f"{where}: image of {what} = {voxels} voxels exceeds the limit of "
                f"{self.max_voxels} (ReadLimits.max_voxels)"
            )
        if decoded_bytes > self.max_decoded_bytes:
            raise InputError(
                f"{where}: decoded pixel data of {decoded_bytes} bytes ({what}) exceeds the "
                f"limit of {self.max_decoded_bytes} (ReadLimits.max_decoded_bytes)"
            )

    def check_file(self, size_bytes: int, where: str) -> None:
        """Refuse a file larger than ``max_file_bytes`` before reading it.

        Raises:
            InputError: the file is over the limit.
        """
        if size_bytes > self.max_file_bytes:
            raise InputError(
                f"{where}: file of {size_bytes} bytes exceeds the limit of "
                f"{self.max_file_bytes} (ReadLimits.max_file_bytes)"
            )


DEFAULT_LIMITS = ReadLimits()
