"""A/B: this checkout's nncore against another checkout's, interleaved.

On a shared machine the speed drifts by tens of percent within minutes, so
"unchanged" is only measurable side by side: this runs ``compare.py``'s
nncore worker for checkout A, then B, then A again ... (each run in its own
process, one warm-up epoch and one timed epoch per workload) and prints the
median seconds per epoch of each and their ratio.

    python bench/ab_nncore.py --other /tmp/old -w W1,W2,W3,W4,W5 --reps 5

``--other`` is a built checkout of another nncore version (e.g.
``git worktree add /tmp/old <commit> && (cd /tmp/old && python setup.py
build_ext --inplace)``).  The data is the real Fashion-MNIST, as in compare.py.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def run(checkout, workloads, python, extra):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "r.json")
        cmd = [python, os.path.join(checkout, "bench", "compare.py"), "--frameworks", "nncore",
               "-w", workloads, "--reps", "1", "--json", out,
               "--out", os.path.join(tmp, "r.md")] + extra
        subprocess.run(cmd, cwd=checkout, check=True, stdout=subprocess.DEVNULL)
        with open(out) as f:
            return {r["workload"]: r.get("epoch_s") for r in json.load(f)["results"]
                    if r.get("status") == "ok"}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--other", required=True, help="a built checkout of the other version")
    p.add_argument("-w", "--workloads", default="W1,W2,W3,W4,W5")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--python", default=sys.executable)
    args, extra = p.parse_known_args()
    times = {"this": {}, "other": {}}
    for rep in range(args.reps):
        for name, checkout in (("this", REPO), ("other", args.other)):
            for wl, t in run(checkout, args.workloads, args.python, extra).items():
                times[name].setdefault(wl, []).append(t)
            print(f"rep {rep + 1}/{args.reps} {name}: done", flush=True)
    print(f"\n| workload | this (median s/epoch) | other | this / other |")
    print("|---|---:|---:|---:|")
    for wl in args.workloads.split(","):
        a, b = times["this"].get(wl), times["other"].get(wl)
        if not a or not b:
            print(f"| {wl} | missing | missing | |")
            continue
        ma, mb = statistics.median(a), statistics.median(b)
        print(f"| {wl} | {ma:.3f} | {mb:.3f} | {ma / mb:.3f} |")
    print(f"\nloadavg at the end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
