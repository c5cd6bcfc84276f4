"""Every benchmark script runs in its quick mode (seconds), so none of them rots."""

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
QUICK_RUNS = {
    "bench_predict.py postprocess": ["postprocess", "--quick"],
    "bench_predict.py normalize": ["normalize", "--quick"],
    "bench_predict.py tiles": ["tiles", "--quick"],
    "bench_predict.py profile": ["profile", "--quick"],
    "bench_augment.py": ["--quick"],
    "bench_dim_recall.py": ["--quick"],
    "bench_nerve.py": ["--quick"],
    "bench_precision.py": ["--quick"],
    "bench_predict.py": ["speed", "--quick"],
    "bench_realdata.py": [
        "--quick",
        "--variants",
        "scales-every-view",
        "own+as-trained",
        "own",
        "own+fp32",
        "own+dim-every",
    ],
    "bench_rle_metric.py": ["--quick"],
    "bench_robustness.py": ["--quick"],
    "bench_threshold_transfer.py": ["--quick"],
    "bench_train.py": ["throughput", "--quick"],
    "bench_tuning.py": ["--quick"],
}


def test_every_benchmark_script_has_a_quick_run():
    scripts = {p.name for p in BENCHMARKS.glob("bench_*.py")}
    assert scripts == {run.split()[0] for run in QUICK_RUNS}


@pytest.mark.parametrize("script", sorted(QUICK_RUNS))
def test_benchmark_runs_in_quick_mode(script):
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / script.split()[0]), *QUICK_RUNS[script]],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip(), "a benchmark prints what it measured"
