"""Helpers shared by the validation studies: seeding, per-setting result caching (so that a
restarted run skips the settings it already finished), figure saving and the final write."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from diffhypergeom_studies.runs import (
    read_json,
    write_bytes_atomic,
    write_json_atomic,
    write_text_atomic,
)

__all__ = [
    "cached_part", "config_dict", "finish", "pyplot", "save_figure", "seed_everything",
    "single_thread",
]


def seed_everything(seed: int, *stream: int) -> np.random.Generator:
    """Seed torch with a value derived from ``(seed, *stream)`` and return a numpy Generator
    on an independent stream of the same key."""
    key = [int(seed), *map(int, stream)]
    seq = np.random.SeedSequence(key)
    torch.manual_seed(int(seq.generate_state(1, np.uint64)[0] % (2**63 - 1)))
    return np.random.default_rng(seq.spawn(1)[0])


@contextlib.contextmanager
def single_thread():
    """Run torch on one intra-op thread inside the block. The urn and gradient studies run
    many tiny tensor operations, where thread hand-offs cost more than they save (on a loaded
    2-core machine a 7 ms step became 130 ms with the default thread count)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def config_dict(config: Any) -> dict[str, Any]:
    """A JSON-able dict of a config dataclass."""
    return json.loads(json.dumps(dataclasses.asdict(config), default=str))


def cached_part(out_dir: Path, name: str, key: dict[str, Any],
                compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Return ``parts/<name>.json`` under ``out_dir`` if it was computed with the same ``key``;
    otherwise compute, store atomically and return it. A corrupt part is recomputed."""
    path = Path(out_dir) / "parts" / f"{name}.json"
    if path.is_file():
        try:
            stored = read_json(path)
        except ValueError:
            stored = None
        if isinstance(stored, dict) and stored.get("key") == json.loads(json.dumps(key)):
            return stored["result"]
    result = compute()
    write_json_atomic(path, {"key": key, "result": result})
    return read_json(path)["result"]  # the JSON form, identical to a cached reload


def save_figure(fig: Any, path: Path) -> Path:
    """Write a matplotlib figure as a PNG atomically and close it."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return write_bytes_atomic(path, buffer.getvalue())


def finish(out_dir: Path, results: dict[str, Any], summary: str, started: float) -> dict[str, Any]:
    """Add the runtime, write ``results.json`` and ``summary.md``; return the results."""
    results["runtime_seconds"] = round(time.perf_counter() - started, 2)
    summary = summary.rstrip() + f"\n\nRuntime: {results['runtime_seconds']:.1f} s.\n"
    write_json_atomic(Path(out_dir) / "results.json", results)
    write_text_atomic(Path(out_dir) / "summary.md", summary)
    results["summary"] = summary
    return results


def pyplot():
    """matplotlib.pyplot on the non-interactive Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
