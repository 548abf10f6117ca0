"""The service's de-identification key: from settings, or a random one kept in the data folder.

The key makes de-identified UIDs and pseudonyms consistent across uploads (the same study
keeps the same de-identified UIDs) without being reversible by anyone who lacks it. A key
made here is 256 random bits, written once with mode 0600 next to the data it protects.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from medsight.imaging.io.deid import DeidPolicy
from medsight.serve.settings import ServiceSettings

KEY_FILE = "deid.key"


def service_policy(settings: ServiceSettings) -> DeidPolicy:
    """The de-identification policy uploads go through (Basic Profile, dates removed)."""
    key = settings.deid_key
    if not key:
        path = Path(settings.data_dir) / KEY_FILE
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32))
                f.flush()
                os.fsync(f.fileno())
        key = path.read_text().strip()
    return DeidPolicy(key=key)
