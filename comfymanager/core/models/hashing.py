"""sha256 of files, in chunks, with progress and cancellation."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from comfymanager.core.progress import CancelToken, Progress, RateMeter, Reporter

CHUNK = 4 * 1024 * 1024


def hash_file(
    path: Path,
    report: Reporter,
    cancel: CancelToken,
    *,
    limit: int | None = None,
    key: str = "",
    stage: str = "verifying",
) -> Any:
    """A ``hashlib.sha256`` object fed with ``path`` (its first ``limit`` bytes if given).

    Returns the hash object (not the digest) so a resumed download can keep feeding it.
    """
    h = hashlib.sha256()
    total = path.stat().st_size if limit is None else limit
    meter = RateMeter()
    done = 0
    with open(path, "rb") as fh:
        while limit is None or done < limit:
            cancel.check()
            want = CHUNK if limit is None else min(CHUNK, limit - done)
            block = fh.read(want)
            if not block:
                break
            h.update(block)
            done += len(block)
            meter.add(done)
            report.progress(
                Progress(
                    stage=stage,
                    done=done,
                    total=total,
                    unit="bytes",
                    speed=meter.speed(),
                    eta=meter.eta(total),
                    message=f"Checking {path.name}",
                    key=key,
                )
            )
    return h


def sha256_file(path: Path, report: Reporter, cancel: CancelToken, key: str = "") -> str:
    digest: str = hash_file(path, report, cancel, key=key).hexdigest()
    return digest
