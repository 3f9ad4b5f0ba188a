"""scripts/bench_maml.py: metaopt's MAML timed against higher and torchopt, at a tiny size.

CI installs only `.[dev]`: the metaopt parts always run, each peer's part is skipped when that
peer is not installed (`pip install -e ".[bench]"`).
"""
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import scaled_timeout

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "bench_maml.py"
TINY = ["--device", "cpu", "--backbone", "conv4", "--image-size", "28", "--iterations", "1"]
PEERS = ("higher", "torchopt")
KEYS = {
    "metaopt_ms", "higher_ms", "torchopt_ms", "speedup_vs_higher", "speedup_vs_torchopt", "device", "backbone",
    "image_size", "metaopt_peak_bytes", "higher_peak_bytes", "torchopt_peak_bytes",
}
# The three libraries run the same float64 computation: their meta-gradients agree to round-off.
ROUND_OFF = 1e-9


def bench(*args: str, hide: tuple[str, ...] = ()) -> tuple[subprocess.CompletedProcess, dict]:
    """Run the script; `hide` makes those modules look uninstalled (a None entry in sys.modules)."""
    launcher = (
        "import runpy, sys; sys.modules.update(dict.fromkeys(sys.argv[2].split(',') if sys.argv[2] else ())); "
        "script = sys.argv[1]; sys.argv = [script, *sys.argv[3:]]; runpy.run_path(script, run_name='__main__')"
    )
    result = subprocess.run([sys.executable, "-c", launcher, str(SCRIPT), ",".join(hide), *args],
                            cwd=ROOT, capture_output=True, text=True, timeout=scaled_timeout(600))
    assert result.returncode == 0, result.stderr[-3000:]
    return result, json.loads(result.stdout.strip().splitlines()[-1])


def relative_difference(stdout: str, peer: str) -> float:
    match = re.search(rf"^agreement with {peer} \(float64, .*: ([0-9.e+-]+)$", stdout, re.MULTILINE)
    assert match, stdout
    return float(match.group(1))


def require(peer: str) -> None:
    if importlib.util.find_spec(peer) is None:
        pytest.skip(f"{peer} is not installed: pip install -e \".[bench]\"")


@pytest.fixture(scope="module")
def tiny():
    return bench(*TINY)


def test_metaopt_is_timed_and_the_last_line_is_the_json(tiny):
    result, figures = tiny
    assert KEYS <= set(figures)
    assert figures["metaopt_ms"] > 0 and figures["metaopt_peak_bytes"] > 0
    assert (figures["device"], figures["backbone"], figures["image_size"]) == ("cpu", "conv4", 28)
    assert "metaopt" in result.stdout and "peak MiB" in result.stdout


@pytest.mark.parametrize("peer", PEERS)
def test_a_peer_computes_the_same_meta_gradient_and_is_timed(tiny, peer):
    require(peer)
    result, figures = tiny
    assert relative_difference(result.stdout, peer) < ROUND_OFF
    assert "warning" not in result.stdout
    assert figures[f"{peer}_max_abs_diff"] is not None
    assert figures[f"{peer}_ms"] > 0 and figures[f"{peer}_peak_bytes"] > 0
    assert figures[f"speedup_vs_{peer}"] == pytest.approx(figures[f"{peer}_ms"] / figures["metaopt_ms"])


@pytest.mark.slow
def test_a_missing_peer_is_skipped_with_how_to_install_it():
    result, figures = bench(*TINY, hide=PEERS)
    assert figures["metaopt_ms"] > 0
    for peer in PEERS:
        assert figures[f"{peer}_ms"] is None and figures[f"speedup_vs_{peer}"] is None
        assert f'{peer}: not installed, skipped; install the peers with pip install -e ".[bench]"' in result.stdout
    assert "agreement: no peer installed to compare with" in result.stdout


@pytest.mark.slow
def test_bf16_runs_every_library_and_reports_its_accuracy_cost():
    """--precision bf16 autocasts the timed meta-iterations and says how far its meta-gradient
    lies from float32's: measurably, since bfloat16 keeps 8 bits of mantissa, yet close."""
    result, figures = bench(*TINY, "--precision", "bf16", hide=PEERS)
    assert figures["precision"] == "bf16"
    assert 1e-4 < figures["precision_rel_diff"] < 0.5
    assert "accuracy cost of bf16" in result.stdout


def test_fp32_reports_no_accuracy_cost(tiny):
    _, figures = tiny
    assert figures["precision"] == "fp32" and figures["precision_rel_diff"] is None
