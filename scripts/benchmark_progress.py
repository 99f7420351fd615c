"""Where each run of a (possibly still running) benchmark stands: its steps, labels and latest evaluation.

    python scripts/benchmark_progress.py runs/benchmark
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path

import tyro

from prefrl.errors import exit_status
from prefrl.interfaces.benchmark import benchmark_runs
from prefrl.interfaces.rows import format_return


@dataclass(frozen=True)
class Args:
    root: tyro.conf.Positional[Path] = Path("runs/benchmark")
    """The benchmark's run directories (its --out), laid out as ENV/ARM/seedN."""


def main(args: Args) -> None:
    print(f"{'run':<40} {'steps':>9} {'labels':>6} {'wall s':>7} {'last eval':>10} {'final':>8}")
    for b in benchmark_runs(args.root):
        run = b.run
        rows = run.read_metrics()
        if not rows:
            continue
        evals = [r for r in rows if not math.isnan(r.get("eval_return", math.nan))]
        summary = run.read_state().get("summary") or {}
        name = str(run.path.relative_to(args.root))
        last = f"{format_return(evals[-1]['eval_return'])}@{evals[-1]['env_steps'] / 1000:.0f}k" if evals else "-"
        final = format_return(summary['final_true_return']) if summary else "-"
        r = rows[-1]
        print(f"{name:<40} {r['env_steps']:>9.0f} {r['labels']:>6.0f} {r['wall_s']:>7.0f} {last:>10} {final:>8}")


if __name__ == "__main__":
    sys.exit(exit_status(lambda: main(tyro.cli(Args, description=__doc__))))
