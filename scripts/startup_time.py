"""Start-up time of ``hotelbot --help`` (and every subcommand's) against ``import typer, rich``.

The runs are interleaved (reference, then each command, round after round) so that a noisy
host slows them alike; the ratio of medians is what counts, measured in the same run.

    python scripts/startup_time.py [--runs 21]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

COMMANDS = [
    [],
    ["db"],
    ["db", "upgrade"],
    ["db", "stats"],
    ["server"],
    ["server", "start"],
    ["seed"],
    ["rls-check"],
    ["bench"],
]


def _once(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21, help="rounds (default 21)")
    args = parser.parse_args()
    reference = [sys.executable, "-c", "import typer, rich"]
    script = Path(sys.executable).with_name("hotelbot")  # the installed console script
    hotelbot = [str(script)] if script.exists() else [sys.executable, "-m", "hotelbot_cli"]
    programs = {" ".join(["hotelbot", *c, "--help"]): [*hotelbot, *c, "--help"] for c in COMMANDS}
    times: dict[str, list[float]] = {"import typer, rich": []} | {name: [] for name in programs}
    for _ in range(args.runs):
        times["import typer, rich"].append(_once(reference))
        for name, argv in programs.items():
            times[name].append(_once(argv))
    ref = statistics.median(times["import typer, rich"])
    print(f"{'command':<34} {'median':>8} {'ratio':>6}  (runs={args.runs}, interleaved)")
    label = 'python -c "import typer, rich"'
    print(f"{label:<34} {ref * 1000:>6.0f}ms {1:>5.2f}×")
    worst = 0.0
    for name in programs:
        median = statistics.median(times[name])
        worst = max(worst, median / ref)
        print(f"{name:<34} {median * 1000:>6.0f}ms {median / ref:>5.2f}×")
    print(f"worst ratio: {worst:.2f}×")
    return 0


if __name__ == "__main__":
    sys.exit(main())
