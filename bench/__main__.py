"""`make bench`: run every benchmark, each against a baseline measured in the same run.

Results land in bench/results/<name>.json; bench/results/summary.png draws every comparison
(measured vs baseline, log scale) so the figures can be seen at a glance.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
# script -> result file; the order runs the cheap ones first.
BENCHMARKS = {
    "bulk_import.py": "bulk_import.json",
    "route_lookup.py": "route_lookup.json",
    "rule_eval.py": "rule_eval.json",
    "invoice_run.py": "invoice_run.json",
    "cti_events.py": "cti_events.json",
    "sip_bench.py": "sip_core.json",
    "fax.py": "fax.json",
    # Last: 249,000 bindings on every proxy, about 40 minutes.
    "full_size.py": "full_size.json",
}


def run_all() -> list[tuple[str, dict]]:
    done = []
    present = [s for s in BENCHMARKS if (BENCH / s).exists()]
    for index, script in enumerate(present, 1):
        print(f"[{index}/{len(present)}] {script}", flush=True)
        started = time.monotonic()
        module = f"bench.{script.removesuffix('.py')}"
        run = subprocess.run([sys.executable, "-m", module], cwd=BENCH.parent, check=False)
        took = time.monotonic() - started
        if run.returncode != 0:
            print(f"    FAILED after {took:.0f}s (exit {run.returncode})", flush=True)
            raise SystemExit(run.returncode)
        result = json.loads((RESULTS / BENCHMARKS[script]).read_text())
        print(f"    done in {took:.0f}s -> bench/results/{BENCHMARKS[script]}", flush=True)
        done.append((script, result))
    return done


def draw(results: list[tuple[str, dict]]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [c for _, r in results for c in r.get("comparisons", [])]
    fig, ax = plt.subplots(figsize=(11, 0.45 * len(rows) + 1.5))
    labels = [f"{c['metric']} ({c['unit']})" for c in rows]
    y = range(len(rows))
    ax.barh([i + 0.2 for i in y], [c["value"] for c in rows], height=0.4, label="platform")
    ax.barh(
        [i - 0.2 for i in y], [c["baseline"] for c in rows], height=0.4, label="baseline (same run)"
    )
    for i, c in enumerate(rows):
        ratio = c["value"] / c["baseline"] if c["baseline"] else float("nan")
        ax.text(
            c["value"],
            i + 0.2,
            f"  {c['value']:g} ({ratio:.1f}x {c['baseline_label']})",
            va="center",
            fontsize=8,
        )
    ax.set_yticks(list(y), labels)
    ax.set_xscale("log")
    # Room on the right for the labels of the longest bars (log scale: a factor, not a sum).
    ax.set_xlim(right=max(max(c["value"], c["baseline"]) for c in rows) * 60)
    ax.invert_yaxis()
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title("make bench: platform vs same-run baseline (log scale)")
    fig.tight_layout()
    out = RESULTS / "summary.png"
    fig.savefig(out, dpi=110, bbox_inches="tight")
    return out


def on_disk() -> list[tuple[str, dict]]:
    """The results as the last runs left them (one benchmark may have been rerun alone)."""
    return [
        (script, json.loads((RESULTS / name).read_text()))
        for script, name in BENCHMARKS.items()
        if (RESULTS / name).exists()
    ]


def main() -> int:
    # `python -m bench --draw` redraws the summary from bench/results without running anything.
    results = on_disk() if sys.argv[1:] == ["--draw"] else run_all()
    print(f"chart: {draw(results).relative_to(BENCH.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
