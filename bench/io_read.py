"""DICOM series load throughput: medsight's reader against SimpleITK's ImageSeriesReader.

Both read the same synthetic full-size chest CT series (96 slices of 512 x 512, int16,
uncompressed; ``write_chest_ct_dataset(..., size="full")``) from a folder, doing the whole
job: find the series' files, parse the headers, order the slices, decode and rescale.
SimpleITK's side is ``GetGDCMSeriesFileNames`` + ``Execute``. Files are read once before
timing, so both run from the page cache. Throughput is stored pixel megabytes per second;
the best of ``--repeats`` runs each is printed side by side with the ratio
medsight / SimpleITK (goal: >= 1.0).

Usage: ``python bench/io_read.py [--repeats 5] [--workers 4] [--data DIR]``
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from medsight.imaging.io.dicom_series import read_dicom_series
from medsight.imaging.synth.chest_ct import write_chest_ct_dataset


def best_seconds(run: Callable[[], object], repeats: int) -> float:
    """The fastest of ``repeats`` timed calls of ``run``."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--workers", type=int, default=4, help="medsight decode threads")
    parser.add_argument("--data", type=Path, help="existing dataset folder (else generated)")
    args = parser.parse_args()

    import SimpleITK as sitk  # dev extra: only the benchmark and tests need it

    with tempfile.TemporaryDirectory() as tmp:
        data = args.data
        if data is None:
            data = Path(tmp) / "chest"
            print("generating one full-size synthetic series (96 x 512 x 512) ...")
            write_chest_ct_dataset(data, 1, seed=0, size="full", workers=1)
        series = next(p for p in sorted((data / "series").iterdir()) if p.is_dir())
        files = sorted(series.glob("*.dcm"))
        for f in files:  # warm the page cache for both readers
            f.read_bytes()

        def medsight_read() -> np.ndarray:
            return read_dicom_series(series, workers=args.workers).array

        def sitk_read() -> object:
            reader = sitk.ImageSeriesReader()
            reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(series)))
            return reader.Execute()  # no conversion to numpy: SimpleITK's best case

        ours, theirs = medsight_read(), sitk.GetArrayFromImage(sitk_read())
        if ours.shape != theirs.shape or float(np.abs(ours - theirs).max()) > 0.5:
            raise SystemExit("the two readers disagree; fix that before timing")
        megabytes = ours.size * 2 / 1e6  # int16 stored pixels
        t_ours = best_seconds(medsight_read, args.repeats)
        t_theirs = best_seconds(sitk_read, args.repeats)

    print(
        f"series: {len(files)} files, {ours.shape[0]}x{ours.shape[1]}x{ours.shape[2]}, "
        f"{megabytes:.1f} MB of pixels; best of {args.repeats}"
    )
    print(f"{'reader':<28}{'seconds':>10}{'MB/s':>10}")
    print(
        f"{'medsight (workers=' + str(args.workers) + ')':<28}{t_ours:>10.4f}"
        f"{megabytes / t_ours:>10.1f}"
    )
    print(f"{'SimpleITK ImageSeriesReader':<28}{t_theirs:>10.4f}{megabytes / t_theirs:>10.1f}")
    print(f"ratio medsight / SimpleITK (throughput): {t_theirs / t_ours:.2f}")


if __name__ == "__main__":
    main()
