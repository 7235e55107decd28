"""A worker process caps the threads of torch and of numpy's BLAS alike."""

from __future__ import annotations

import json
import subprocess
import sys

# Run apart: the cap is process-wide and would hold for the rest of the test session.
PROBE = """
import json, torch
from threadpoolctl import threadpool_info
from brain.config import limit_cpu_threads
limit_cpu_threads(1)
blas = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
print(json.dumps({"torch": torch.get_num_threads(), "blas": blas}))
"""


def test_a_worker_process_runs_blas_and_torch_on_one_thread() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=120
    )
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["torch"] == 1
    assert got["blas"] and all(n == 1 for n in got["blas"])  # numpy's OpenBLAS is capped too
