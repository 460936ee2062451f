"""Files of a run on disk, written atomically so a kill at any moment leaves no half-written file.

<results_dir>/runs/<run_id>/config.json   the full resolved config
                            metrics.csv   one row per finished epoch
                            summary.json  written last: its presence means the run is finished
"""
from __future__ import annotations

import csv
import errno
import io
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, Mapping

from lit_modules.registry import ConfigError


def write_atomic(path: Path, text: str | bytes) -> None:
    """Write to a temp file in the same folder, then rename over the target (atomic on POSIX)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb" if isinstance(text, bytes) else "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def disk_full(exc: BaseException | None) -> bool:
    """Whether an error (or one it was raised from) means the disk or the user's quota is full: then
    no run is at fault, and the grid stops instead of charging runs with failures."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def _json_safe(value: Any) -> Any:
    """NaN and inf are not JSON: they become null (a diverged run's metrics stay missing, not faked)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def write_json(path: Path, obj: Mapping[str, Any]) -> None:
    write_atomic(path, json.dumps(_json_safe(obj), indent=2, sort_keys=False) + "\n")


def read_json(path: Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def write_rows(path: Path, rows: Iterable[Mapping[str, Any]]) -> None:
    rows = list(rows)
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(path, buf.getvalue())


def check_results_dir(path: str | Path, write: bool = True) -> None:
    """The folder exists or can be made, and a file can be written in it (skipped with write=False:
    a dry run or a report only reads)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"--results-dir {path}: is a file, not a folder")
    if not write:
        return
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as e:
        raise ConfigError(f"--results-dir {path}: cannot write there ({e.strerror or e})") from None
