"""Run directories and atomic result files shared by every experiment command.

Layout: ``<root>/<command>/<timestamp>/`` holding ``results.json``, ``summary.md`` and figures.
Every write goes to a temporary file in the same directory and is renamed into place, so an
interrupted run never leaves a truncated result behind.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

__all__ = [
    "make_run_dir", "markdown_table", "read_json", "write_bytes_atomic", "write_json_atomic",
    "write_text_atomic",
]


def make_run_dir(command: str, root: str | os.PathLike = "runs",
                 out: str | os.PathLike | None = None) -> Path:
    """``out`` if given (created if missing; reused to resume), else a new
    ``<root>/<command>/<UTC timestamp>/``.

    Example:
        >>> import tempfile
        >>> from diffhypergeom_studies.runs import make_run_dir
        >>> with tempfile.TemporaryDirectory() as root:
        ...     run = make_run_dir("bench", root=root)  # <root>/bench/<timestamp>/
        ...     print(run.parent.name, run.is_dir(), make_run_dir("bench", out=run) == run)
        bench True True
    """
    if out is not None:
        path = Path(out)
    else:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
        path = Path(root) / command / stamp
        suffix = 1
        while path.exists():
            path = Path(root) / command / f"{stamp}-{suffix}"
            suffix += 1
    path.mkdir(parents=True, exist_ok=True)
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` (creating its folders) through a temporary file in the same
    folder renamed into place, so ``path`` holds the old or the new bytes, never a part.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from diffhypergeom_studies.runs import write_bytes_atomic
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     path = write_bytes_atomic(Path(tmp) / "figures" / "data.bin", b"abc")
        ...     print(path.read_bytes(), [p.name for p in path.parent.iterdir()])
        b'abc' ['data.bin']
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; results are for sharing
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """``text`` in UTF-8, written atomically as by ``write_bytes_atomic``.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from diffhypergeom_studies.runs import write_text_atomic
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     path = write_text_atomic(Path(tmp) / "summary.md", "# Summary")
        ...     print(path.name, path.read_text(encoding="utf-8"))
        summary.md # Summary
    """
    return write_bytes_atomic(path, text.encode("utf-8"))


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if hasattr(value, "tolist"):  # numpy / torch scalars and arrays
        return _jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, Path):
        return str(value)
    return value


def write_json_atomic(path: str | os.PathLike, obj: Any) -> Path:
    """JSON with numpy/torch values converted; NaN becomes null and inf the string "inf".

    Example:
        >>> import json, tempfile
        >>> from pathlib import Path
        >>> import numpy as np, torch
        >>> from diffhypergeom_studies.runs import write_json_atomic
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     obj = {"n": np.int64(3), "mean": torch.tensor([0.5, float("nan")]), "ratio": 1e400}
        ...     print(json.loads(write_json_atomic(Path(tmp) / "results.json", obj).read_text()))
        {'n': 3, 'mean': [0.5, None], 'ratio': 'inf'}
    """
    return write_text_atomic(path, json.dumps(_jsonable(obj), indent=2, allow_nan=False) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file with a clear error for a missing or corrupt one.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from diffhypergeom_studies.runs import read_json, write_text_atomic
        >>> with tempfile.TemporaryDirectory() as tmp:  # doctest: +ELLIPSIS
        ...     good = read_json(write_text_atomic(Path(tmp) / "good.json", '{"n": [1, 2]}'))
        ...     read_json(write_text_atomic(Path(tmp) / "bad.json", '{"n": '))
        Traceback (most recent call last):
        ...
        ValueError: corrupt JSON in .../bad.json: Expecting value: line 1 column 7 (char 6)
        >>> good
        {'n': [1, 2]}
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"results file not found: {path}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"corrupt JSON in {path}: {err}") from err


def markdown_table(header: list[str], rows: list[list[Any]], floatfmt: str = ".4g") -> str:
    """A GitHub-flavoured markdown table; floats formatted with ``floatfmt``.

    Example:
        >>> from diffhypergeom_studies.runs import markdown_table
        >>> print(markdown_table(["engine", "seconds"], [["fft", 0.0123456], ["logspace", 2]]))
        | engine | seconds |
        |---|---|
        | fft | 0.01235 |
        | logspace | 2 |
    """

    def cell(value: Any) -> str:
        if isinstance(value, float):
            return format(value, floatfmt)
        return str(value)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
