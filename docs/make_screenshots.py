"""Screenshots of the clinician web viewer for the README, made with trained models.

In a temporary folder: write a small synthetic chest-CT cohort, register a trained
classifier (``lung-ct``) and a trained lung/nodule segmenter (``lung-seg``), add a clinician
with a password, start ``medsight serve`` on a free loopback port, submit one series with a
nodule to each model through the HTTP API and wait for both jobs. Then Debian's chromium
(driven by Playwright) logs in through the form and takes three viewport screenshots::

    viewer-worklist.png        the worklist with both finished studies
    viewer-segmentation.png    the segmentation study, first nodule picked, mask overlay on
    viewer-classification.png  the classification study, Grad-CAM heatmap overlay on

Usage (from the repository root, in the project's virtual environment)::

    python docs/make_screenshots.py --classifier RUN --segmenter RUN --out docs/images

Needs the ``serve`` extra, ``playwright`` (the Python package only: never run
``playwright install``, it downloads a browser) and ``/usr/bin/chromium``.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import nibabel as nib
import numpy as np

from medsight.releases.model_registry import ModelRegistry
from medsight.serve.auth.users import HOST_CLI, add_user
from medsight.serve.store.database import Database

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1400, "height": 900}
CLASSIFIER, SEGMENTER = "lung-ct", "lung-seg"
USER, PASSWORD = "clinician", "screenshots need a long password"
NODULE_LABEL = 2  # value of the nodule in the synthetic masks (1 = lung)
JOB_TIMEOUT_S = 300.0


def synthesise_cohort(out: Path, cases: int, seed: int) -> Path:
    """Write a synthetic chest-CT cohort with ``medsight synth chest-ct``.

    Returns:
        The cohort's ``labels.csv``.
    """
    command = [sys.executable, "-m", "medsight", "synth", "chest-ct", str(out)]
    command += ["--cases", str(cases), "--seed", str(seed)]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return out / "labels.csv"


def nodule_series(labels_csv: Path) -> Path:
    """The series folder of a case labelled malignant (else benign) whose mask has a nodule.

    Raises:
        SystemExit: no case in the cohort has a nodule (try another ``--seed``).
    """
    with open(labels_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    for wanted in ("malignant", "benign"):
        for row in rows:
            if row["label"] != wanted:
                continue
            mask = np.asarray(nib.load(labels_csv.parent / row["mask"]).dataobj)
            if (mask == NODULE_LABEL).any():
                return labels_csv.parent / row["series_dir"]
    raise SystemExit(f"{labels_csv}: no benign or malignant case with a nodule; try another --seed")


def series_zip(folder: Path) -> bytes:
    """The DICOM files of one series folder as a zip, for one multipart ``files`` part."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.iterdir()):
            if path.is_file():
                archive.write(path, path.name)
    return buffer.getvalue()


def clinician_token(database_url: str) -> str:
    """Add the clinician (with a viewer password) and return its API token."""
    db = Database(database_url)
    try:
        with db.write() as session:
            _, token = add_user(
                session, USER, "clinician", token_days=1, actor=HOST_CLI, password=PASSWORD
            )
            session.commit()
    finally:
        db.close()
    return token


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_service(work: Path, database_url: str) -> Iterator[str]:
    """``medsight serve`` on a free loopback port; yields its base URL, stops it on exit."""
    port = free_port()
    command = [sys.executable, "-m", "medsight", "serve", "--port", str(port)]
    command += ["--data", str(work / "data"), "--registry", str(work / "registry")]
    command += ["--database-url", database_url]
    # settings come from the options only, not from whatever MEDSIGHT_* the caller has set
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDSIGHT_")}
    log = work / "serve.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise SystemExit(f"medsight serve exited:\n{log.read_text()}")
            try:
                if httpx.get(f"{url}/healthz", timeout=2.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"medsight serve did not answer /healthz:\n{log.read_text()}")
            time.sleep(0.2)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def predict(client: httpx.Client, token: str, model: str, upload: bytes) -> dict:
    """Submit ``upload`` to ``model`` and wait for the job.

    Returns:
        The finished job as ``GET /v1/jobs/ID`` describes it (``job_id``, ``result``, ...).

    Raises:
        SystemExit: the submission is refused, the job fails or does not finish in time.
    """
    header = {"Authorization": f"Bearer {token}"}
    files = [("files", ("series.zip", upload, "application/zip"))]
    r = client.post(f"/v1/predict/{model}", files=files, headers=header)
    if r.status_code not in (200, 202):
        raise SystemExit(f"POST /v1/predict/{model}: {r.status_code} {r.text}")
    job_id = str(r.json()["job_id"])
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while time.monotonic() < deadline:
        body = client.get(f"/v1/jobs/{job_id}", headers=header).json()
        if body["state"] == "done":
            return {**body, "job_id": job_id}
        if body["state"] == "failed":
            raise SystemExit(f"{model} job {job_id} failed: {body}")
        time.sleep(0.5)
    raise SystemExit(f"{model} job {job_id} did not finish in {JOB_TIMEOUT_S:.0f} s")


def first_nodule_slice(seg_job: dict) -> int:
    """The viewer slice of the segmentation's first nodule component.

    Raises:
        SystemExit: the segmenter found no nodule in the series.
    """
    components = seg_job["result"]["structures"].get("nodule", {}).get("components", [])
    if not components:
        raise SystemExit(f"the segmenter found no nodule: {seg_job['result']}")
    return int(components[0]["slice"])


def take_screenshots(url: str, seg_job: str, cls_job: str, cls_slice: int, out: Path) -> list[Path]:
    """Log in through the form and screenshot the worklist and both studies (viewport only).

    The classification study is shown at ``cls_slice`` (the nodule's), not at its middle
    slice, so the heatmap is seen over the finding it points at.

    Returns:
        The PNG files written.
    """
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    written = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
            page = context.new_page()
            page.goto(f"{url}/viewer/login")
            page.fill("#login-name", USER)
            page.fill("#login-password", PASSWORD)
            page.click("#login-submit")
            page.wait_for_url(f"{url}/viewer")
            page.wait_for_function(
                "() => document.querySelectorAll('#worklist-rows tr').length == 2"
            )
            page.mouse.move(0, 0)  # no hover highlight in the picture
            written.append(out / "viewer-worklist.png")
            page.screenshot(path=str(written[-1]))

            page.goto(f"{url}/viewer/study/{seg_job}")
            page.wait_for_selector("#slice-canvas[data-ready='true']")
            page.click("button.component[data-structure='nodule'] >> nth=0")
            if not page.is_checked("#show-mask"):
                page.check("#show-mask")
            page.mouse.move(0, 0)
            written.append(out / "viewer-segmentation.png")
            page.screenshot(path=str(written[-1]))

            page.goto(f"{url}/viewer/study/{cls_job}")
            page.wait_for_selector("#slice-canvas[data-ready='true']")
            page.fill("#slice-slider", str(cls_slice))
            page.check("#show-heatmap")
            page.mouse.move(0, 0)
            written.append(out / "viewer-classification.png")
            page.screenshot(path=str(written[-1]))
            context.close()
        finally:
            browser.close()
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classifier", type=Path, required=True, help="trained classify run")
    parser.add_argument("--segmenter", type=Path, required=True, help="trained segment run")
    parser.add_argument("--out", type=Path, default=Path("docs/images"), help="PNG folder")
    parser.add_argument("--cases", type=int, default=6, help="synthetic cases to draw from")
    parser.add_argument("--seed", type=int, default=3, help="synthetic cohort seed")
    args = parser.parse_args(argv)
    if not CHROMIUM.is_file():
        raise SystemExit(f"{CHROMIUM} is missing (Debian package chromium)")

    with tempfile.TemporaryDirectory(prefix="medsight-screenshots-") as tmp:
        work = Path(tmp)
        series = nodule_series(synthesise_cohort(work / "cohort", args.cases, args.seed))
        upload = series_zip(series)
        registry = ModelRegistry(work / "registry")
        registry.add(args.classifier, CLASSIFIER)
        registry.add(args.segmenter, SEGMENTER)
        database_url = f"sqlite:///{work}/medsight.db"
        token = clinician_token(database_url)
        with (
            running_service(work, database_url) as url,
            httpx.Client(base_url=url, timeout=120.0) as client,
        ):
            seg_job = predict(client, token, SEGMENTER, upload)
            cls_job = predict(client, token, CLASSIFIER, upload)
            written = take_screenshots(
                url, seg_job["job_id"], cls_job["job_id"], first_nodule_slice(seg_job), args.out
            )
    print(f"series: {series.name}")
    for path in written:
        print(f"{path}  {path.stat().st_size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
