#!/usr/bin/env python3
"""Per-language figures for the polyglot tasks: component size, build time,
first-run time (which compiles the component), warm executed run and fully
cached run, each the whole `cairn` process, in a fresh store.

    cargo build --release -p cairn
    tests/toolchains/install all
    python3 examples/polyglot/measure.py [--cairn target/release/cairn] [--runs 5]

Each task runs alone in a one-job workflow over data/sample.txt with the
polyglot workflow's default options. Times are wall-clock medians (min-max)
of --runs runs; the build and the first run happen once by nature.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent

TYPED = """jobs:
  t:
    uses: {dir}
    with:
      text: ${{{{ inputs.text }}}}
      options: {{casing: lower, min-length: 2, top: 5, stop-words: [the, a, an], tag: m}}
inputs:
  text: {sample}
"""
COMMAND = """jobs:
  t:
    uses: {dir}
    args: [lower, "2", "5", the, a, an]
    inputs: {{ text: "${{{{ inputs.text }}}}" }}
    outputs: [top, text, summary]
inputs:
  text: {sample}
"""
TASKS = [
    ("Rust", "rust", TYPED),
    ("Python", "python", TYPED),
    ("JavaScript", "js", TYPED),
    ("C (typed)", "c", TYPED),
    ("C (command)", "c-command", COMMAND),
    ("Zig", "zig", COMMAND),
    ("Go", "go", COMMAND),
]


def timed(cmd, env):
    start = time.perf_counter()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if out.returncode != 0:
        sys.exit(f"{' '.join(map(str, cmd))} failed:\n{out.stdout}{out.stderr}")
    return elapsed, out


def fmt(samples):
    ms = [s * 1000 for s in samples]
    if len(ms) == 1:
        return f"{ms[0]:.0f} ms"
    return f"{statistics.median(ms):.1f} ms ({min(ms):.1f}–{max(ms):.1f})"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cairn", default=str(ROOT / "target/release/cairn"))
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    env = dict(os.environ, CAIRN_TOOLCHAINS=str(ROOT / "target/toolchains"))
    env.pop("CAIRN_STORE", None)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, task, template in TASKS:
            store = Path(tmp) / task / "store"
            wf = Path(tmp) / task / "wf.yaml"
            wf.parent.mkdir(parents=True)
            wf.write_text(template.format(dir=HERE / "tasks" / task, sample=HERE / "data/sample.txt"))
            build_s, out = timed([args.cairn, "build", HERE / "tasks" / task, "--json", "--store", store], env)
            size = json.loads(out.stdout)["size"]
            run = [args.cairn, "run", wf, "--store", store]
            first_s, _ = timed(run, env)
            warm = [timed(run + ["--no-cache"], env)[0] for _ in range(args.runs)]
            cached = [timed(run, env)[0] for _ in range(args.runs)]
            rows.append((name, size, build_s, first_s, warm, cached))
            print(f"measured {name}", file=sys.stderr)
    print("| task | component | build | first run (compiles) | executed run, compiled cached | cached run |")
    print("|---|---|---|---|---|---|")
    for name, size, build_s, first_s, warm, cached in rows:
        print(
            f"| {name} | {size / 1e6:.2f} MB | {build_s:.1f} s | {fmt([first_s])} | {fmt(warm)} | {fmt(cached)} |"
        )


if __name__ == "__main__":
    main()
