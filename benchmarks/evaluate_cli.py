"""``striate evaluate RUN`` compiled (the default) against ``--eager`` (op by op), interleaved.

    python -m striate train lenet5 --epochs 1 --out /tmp/lenet5-run --quiet
    python benchmarks/evaluate_cli.py /tmp/lenet5-run                  # 3 rounds
    python benchmarks/evaluate_cli.py /tmp/lenet5-run --threads 1      # the BLAS at one thread

Each round runs both commands, alternating which goes first, twice: once as the command
itself (``python -m striate evaluate RUN [--eager]`` from the repository root, timed from
process start to exit), once through ``striate.cli.main`` with ``evaluate`` wrapped by a
timer (the evaluation alone: no interpreter start, imports, or data loading). Both print the
same accuracy and loss, which is checked. Without ``--threads`` the BLAS runs as the command
leaves it; the header gives the CPU, the BLAS and the load average.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

TIMED = r"""
import sys, time
import striate.train as train
from striate.cli import main
evaluate, took = train.evaluate, []
def timed(*args, **kwargs):
    t0 = time.perf_counter()
    result = evaluate(*args, **kwargs)
    took.append(time.perf_counter() - t0)
    return result
train.evaluate = timed
code = main(sys.argv[1:])
print(f"EVALUATE_SECONDS {took[0]}", file=sys.stderr)
sys.exit(code)
"""


def header() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    import numpy  # noqa: F401  (loads the BLAS, so that threadpoolctl sees it)
    from threadpoolctl import threadpool_info
    blas = [f"{i['internal_api']} {i['version']} ({i.get('architecture')}, {i['num_threads']} threads by default)"
            for i in threadpool_info() if i["user_api"] == "blas"]
    return f"{cpu}, {os.cpu_count()} CPUs; {', '.join(blas)}; load average {os.getloadavg()[0]:.2f}"


def run(argv: list[str], env: dict) -> subprocess.CompletedProcess:
    done = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"{' '.join(argv)} failed:\n{done.stderr}")
    return done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", help="a run folder (striate train ... --out DIR)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, help="BLAS threads (OPENBLAS_NUM_THREADS); default: as the command")
    args = parser.parse_args()
    env = dict(os.environ, PYTHONPATH=str(REPO))
    if args.threads:
        env.update(OPENBLAS_NUM_THREADS=str(args.threads), OMP_NUM_THREADS=str(args.threads))
    print(header())
    times: dict[str, dict[str, list[float]]] = {m: {"command": [], "evaluate": []} for m in ("compiled", "eager")}
    printed = set()
    for r in range(args.rounds):
        for mode in ("compiled", "eager") if r % 2 == 0 else ("eager", "compiled"):
            flag = ["--eager"] if mode == "eager" else []
            t0 = time.perf_counter()
            done = run([sys.executable, "-m", "striate", "evaluate", args.run, *flag], env)
            times[mode]["command"].append(time.perf_counter() - t0)
            printed.add(done.stdout)
            done = run([sys.executable, "-c", TIMED, "evaluate", args.run, *flag], env)
            times[mode]["evaluate"].append(float(done.stderr.rsplit("EVALUATE_SECONDS", 1)[1]))
            printed.add(done.stdout)
            print(f"round {r + 1} {mode:8} command {times[mode]['command'][-1]:.2f} s, "
                  f"evaluate() {times[mode]['evaluate'][-1]:.3f} s", flush=True)
    for mode, t in times.items():
        print(f"{mode:8} " + "; ".join(f"{what} median {statistics.median(v):.3f} s [{min(v):.3f}-{max(v):.3f}]"
                                       for what, v in t.items()))
    print("the same report both ways:", len(printed) == 1, "|", next(iter(printed)).splitlines()[0])
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
