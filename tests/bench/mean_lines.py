"""Average JSON lines (read from stdin) key by key: the mean over seeds that ``make eval``
reports. Prints one JSON line: the mean of each numeric key, its ``min`` and ``max``, and
``runs``.

Run: ``... | python -m tests.bench.mean_lines NAME``.
"""

from __future__ import annotations

import json
import sys


def main() -> None:
    """Command line: see the module docstring."""
    rows = [json.loads(line) for line in sys.stdin if line.strip().startswith("{")]
    out: dict[str, object] = {
        "eval": sys.argv[1] if len(sys.argv) > 1 else "mean",
        "runs": len(rows),
    }
    for key in rows[0] if rows else {}:
        values = [r[key] for r in rows if isinstance(r.get(key), int | float)]
        if len(values) == len(rows):
            out[key] = round(sum(values) / len(values), 4)
            out[f"{key}_min"], out[f"{key}_max"] = min(values), max(values)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
