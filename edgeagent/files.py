"""Writing files so that a reader sees the old content or the new, never half of it.

Everything edgeagent writes (scenario files, results, models, manifests, engines, checkpoints, data
shards) goes through ``write_atomic``: a temporary file in the same folder, flushed to disk, then
renamed over the target (atomic on one file system). A crash or Ctrl-C leaves no partial file behind.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable


def write_atomic(path: str | os.PathLike, data: bytes | bytearray | memoryview | str) -> Path:
    """Write ``data`` (text is UTF-8 encoded) to ``path`` atomically; creates the folder; returns the path.

    A new file gets mode 0644 (not mkstemp's private 0600); a replaced one keeps its mode.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json_atomic(path: str | os.PathLike, data: Any) -> Path:
    """``data`` as indented JSON (strict: NaN refused) plus a newline, written atomically."""
    return write_atomic(path, json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n")


def write_with_atomic(path: str | os.PathLike, save: Callable[[io.BytesIO], Any]) -> Path:
    """Atomically write what ``save(buffer)`` puts into a bytes buffer (``np.savez``, ``torch.save``)."""
    buf = io.BytesIO()
    save(buf)
    return write_atomic(path, buf.getbuffer())
