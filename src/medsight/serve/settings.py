"""`ServiceSettings`: everything `medsight serve` is configured with, from flags or MEDSIGHT_* env.

One frozen pydantic-settings model (house style: service settings via pydantic-settings), so a
deployment can be set from environment variables (``MEDSIGHT_DATABASE_URL``,
``MEDSIGHT_DATA_DIR``, ...) and the CLI flags override them. Defaults are the safe ones:
loopback only, authentication always on, small upload limits.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from medsight.errors import InputError

MIB = 2**20


class ServiceSettings(BaseSettings):
    """Configuration of one service process.

    Attributes:
        data_dir: de-identified uploads and result files (``uploads/``, ``results/``) and the
            de-identification key file.
        database_url: SQLAlchemy URL; empty means ``sqlite:///DATA_DIR/../medsight.db``
            (beside the data folder). PostgreSQL: ``postgresql+psycopg://user:pw@host/db``.
        registry: the model registry folder (`medsight registry` writes it; the service only
            reads and verifies it).
        deid_key: key for the keyed hashes of de-identification; empty means a random key
            kept in ``DATA_DIR/deid.key`` (mode 0600), made on first start.
        max_upload_bytes: request body size (checked from Content-Length, then counted).
        max_record_bytes: body size of one patient's record (FHIR Bundle or MEDS rows JSON),
            also checked before reading: a parsed JSON takes several times its size in memory.
        max_files: files in one upload (zip members included).
        max_decompressed_bytes: total uncompressed size of a zip's members.
        max_voxels: voxels of one input image (checked from headers before decoding).
        rate_per_minute: requests per minute per user (token bucket, burst of the same size).
        queue_max: queued + running jobs before new 3D submissions get 503 + Retry-After.
        sync_max: 2D predictions running at once before more get 503 + Retry-After.
        token_days: lifetime of a new API token.
        session_minutes: lifetime of a viewer login session.
        workers: job worker threads of this process; 0 runs none (an API-only process, with
            `medsight worker` processes running the jobs).
        heartbeat_seconds: how often a worker stamps ``heartbeat_at`` on the job it runs.
        stall_seconds: a running job whose heartbeat is older than this is taken back from
            its worker (killed, frozen or cut off) and queued again by any worker's reaper.
        max_attempts: claims of one job before a stalled job is failed instead of re-queued.
        poll_seconds: how often an idle worker looks for queued jobs when nothing woke it
            (PostgreSQL wakes it at once with NOTIFY; SQLite relies on this poll across
            processes).
        dicom_config: the DICOM node's YAML configuration (`dicom_config.NodeConfig`); None
            runs no DICOM node.
    """

    model_config = SettingsConfigDict(env_prefix="MEDSIGHT_", frozen=True, extra="ignore")

    data_dir: Path = Path("medsight-data")
    database_url: str = ""
    registry: Path = Path("medsight-registry")
    deid_key: str = Field(default="", repr=False)
    max_upload_bytes: int = 256 * MIB
    max_record_bytes: int = 16 * MIB
    max_files: int = 2000
    max_decompressed_bytes: int = 1024 * MIB
    max_voxels: int = 2**27
    rate_per_minute: int = 120
    queue_max: int = 32
    sync_max: int = 4
    token_days: int = 90
    session_minutes: int = 480
    workers: int = Field(default=1, ge=0)
    heartbeat_seconds: float = Field(default=5.0, gt=0)
    stall_seconds: float = Field(default=30.0, gt=0)
    max_attempts: int = Field(default=3, ge=1)
    poll_seconds: float = Field(default=1.0, gt=0)
    dicom_config: Path | None = None

    @model_validator(mode="after")
    def _lease_times(self) -> ServiceSettings:
        # a worker misses a beat or two under load; a stall time that short would take jobs
        # from live workers
        if self.stall_seconds <= 2 * self.heartbeat_seconds:
            raise ValueError("stall_seconds must be more than twice heartbeat_seconds")
        return self

    def resolved_database_url(self) -> str:
        """The database URL, with the SQLite default placed beside the data folder."""
        if self.database_url:
            return self.database_url
        path = self.data_dir.resolve().parent / "medsight.db"
        return f"sqlite:///{path}"


def settings_from_options(label: str, **options: object) -> ServiceSettings:
    """The settings from the environment with the command line's options (None: unset) on top.

    Raises:
        InputError: a setting is invalid; one line naming it (``label``: "service settings").
    """
    overrides = {k: v for k, v in options.items() if v is not None}
    try:
        return ServiceSettings.model_validate(overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "settings"
        raise InputError(f"{label}: {where}: {first['msg']}") from None
