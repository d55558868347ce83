#!/usr/bin/env python3
"""Benchmark workflow shapes, written twice: as a Cairn workflow (YAML) and as
a neutral JSON task graph that the Python peers (peers.py) execute.

Shapes (N = --tasks, default 10,000; the structured shapes use M = N/10):

  independent  N independent tasks (a Cairn matrix job)
  fanout       1 -> M -> 1 (fan-out, then one fan-in of all M values)
  chain        an M-deep chain, each task consuming its predecessor's output
  lattice      an S x S grid, S = round(sqrt(M)) (32 x 32 for M = 1,000);
               node (r, c) depends on (r-1, c-1), (r-1, c), (r-1, c+1)
  bigchain     generate -> copy -> consume of one big artifact (1 GiB)

The first four come with two kinds of work: "noop" (nothing) and "hash"
(BLAKE3 over a shared 1 MiB file). Task semantics, identical in the Cairn
guest (tasks/bench) and in peers.py:

  noop(i)              -> i
  step(i, deps)        -> i + sum(deps)              (mod 2^64)
  hash(i, deps, data)  -> step(i, deps) ^ le_u64(blake3(data)[:8])

(The guest spells step and hash as `step`/`hash` with up to three
dependencies a, b, c, 0 for absent ones, and `gather`/`hash-gather` with a
list, for the fan-in, since a typed `with:` takes whole references only.)
  generate(bytes)      -> bytes b[k] = k mod 251
  copy(a)              -> a copy of a
  consume(a)           -> blake3(a) as hex

`i` keeps every task distinct (distinct cache keys in Cairn, no
deduplication anywhere), and `deps` makes every edge a real data dependency.

Run as a script to write the files: python3 bench/shapes.py --out DIR.
"""

import argparse
import json
import math
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TASK_DIR = os.path.join(HERE, "tasks", "bench")  # the Cairn task crate

STRUCTURED = ("fanout", "chain", "lattice")
SHAPES = ("independent",) + STRUCTURED + ("bigchain",)
WORKS = ("noop", "hash")
BLOB_BYTES = 1 << 20  # the shared artifact of the "hash" work
DEFAULT_TASKS = 10_000
DEFAULT_BIG_BYTES = 1 << 30


def all_names():
    """Every benchmark name, in run order: SHAPE-WORK, and bigchain."""
    names = [f"{s}-{w}" for s in ("independent",) + STRUCTURED for w in WORKS]
    return names + ["bigchain"]


def select(spec):
    """Benchmark names matching a comma-separated list of shapes (`chain`),
    full names (`chain-hash`) or works (`noop`, `hash`); None means all."""
    names = all_names()
    if not spec:
        return names
    chosen = []
    for word in (w.strip() for w in spec.split(",") if w.strip()):
        matches = [n for n in names if n == word or n.split("-")[0] == word
                   or n.endswith("-" + word)]
        if not matches:
            sys.exit(f"unknown shape `{word}`; known: {', '.join(names)}")
        chosen += [m for m in matches if m not in chosen]
    return [n for n in names if n in chosen]  # keep run order


# --- the neutral graph --------------------------------------------------------

def graph(name, tasks=DEFAULT_TASKS, big_bytes=DEFAULT_BIG_BYTES, blob=None):
    """The task graph of benchmark `name` as a dict:
    {name, shape, work, artifact, tasks: [{id, fn, i|bytes, deps}], sinks}.
    Tasks are listed in a topological order (every dep before its user)."""
    shape, _, work = name.partition("-")
    m = max(1, tasks // 10)
    out = []
    fn = "hash" if work == "hash" else "step"

    def add(id_, fn_, i=None, deps=(), **extra):
        t = {"id": id_, "fn": fn_, "deps": list(deps)}
        if i is not None:
            t["i"] = i
        t.update(extra)
        out.append(t)

    if shape == "independent":
        # noop takes no deps; the hash variant needs the data, so it is `hash`
        # with no deps (the same guest export the other shapes use).
        for k in range(tasks):
            add(f"t{k}", "noop" if work == "noop" else "hash", k)
    elif shape == "fanout":
        add("src", fn, 0)
        for k in range(m):
            add(f"f{k}", fn, k + 1, ["src"])
        add("sink", fn, m + 1, [f"f{k}" for k in range(m)])
    elif shape == "chain":
        for k in range(m):
            add(f"c{k}", fn, k, [f"c{k - 1}"] if k else [])
    elif shape == "lattice":
        side = lattice_side(tasks)
        for r in range(side):
            for c in range(side):
                deps = [] if r == 0 else [f"n{r - 1}_{cc}" for cc in (c - 1, c, c + 1)
                                          if 0 <= cc < side]
                add(f"n{r}_{c}", fn, r * side + c, deps)
    elif shape == "bigchain":
        add("generate", "generate", deps=[], bytes=big_bytes)
        add("copy", "copy", deps=["generate"])
        add("consume", "consume", deps=["copy"])
    else:
        raise ValueError(f"unknown shape {shape}")

    used = {d for t in out for d in t["deps"]}
    return {
        "name": name,
        "shape": shape,
        "work": work or "stream",
        "artifact": blob if work == "hash" else None,
        "tasks": out,
        "sinks": [t["id"] for t in out if t["id"] not in used],
    }


def lattice_side(tasks):
    return max(1, round(math.sqrt(max(1, tasks // 10))))


# --- the Cairn workflow -------------------------------------------------------

def ref(job):
    """A reference to a job's single typed output, `out`."""
    return f"${{{{ jobs.{job}.outputs.out }}}}"


def dep_args(deps):
    """`with:` lines for a, b, c: one reference each (a typed `with:` takes a
    reference only as a whole value, not inside a list), 0 for the rest."""
    assert len(deps) <= 3, deps
    refs = [ref(d) for d in deps] + ["0"] * (3 - len(deps))
    return [f"      {p}: {r}" for p, r in zip("abc", refs)]


def cairn_yaml(g, workflow_path):
    """The Cairn workflow (text) for graph `g`, to be written at
    `workflow_path` (`uses:` and inputs are relative to it). The guest's
    exports: noop; step/hash take up to 3 dependencies (a, b, c);
    gather/hash-gather take a matrix job's outputs as one list."""
    wdir = os.path.dirname(os.path.abspath(workflow_path))
    uses = os.path.relpath(TASK_DIR, wdir)
    lines = [
        f"# Generated by bench/shapes.py: {g['name']}, {len(g['tasks'])} tasks.",
        f"name: {g['name']}",
    ]
    if g["artifact"]:
        lines += ["inputs:", f"  blob: {os.path.relpath(g['artifact'], wdir)}"]
    lines.append("jobs:")
    hashing = bool(g["artifact"])
    data = ["      data: ${{ inputs.blob }}"] if hashing else []
    step = "hash" if hashing else "step"
    gather = "hash-gather" if hashing else "gather"

    def job(id_, call, with_, extra=()):
        lines.extend([f"  {id_}:", f"    uses: {uses}", f"    call: {call}", *extra,
                      "    with:", *with_])

    def matrix(values):
        return [f"    strategy:\n      matrix:\n        i: [{', '.join(map(str, values))}]"]

    tasks = g["tasks"]
    if g["shape"] == "independent":
        # One matrix job: the idiomatic way to write N independent runs.
        if hashing:
            job("t", step, ["      i: ${{ matrix.i }}"] + dep_args([]) + data,
                matrix(t["i"] for t in tasks))
        else:
            job("t", "noop", ["      i: ${{ matrix.i }}"], matrix(t["i"] for t in tasks))
    elif g["shape"] == "fanout":
        fan = [t for t in tasks if t["id"].startswith("f")]
        job("src", step, ["      i: 0"] + dep_args([]) + data)
        job("fan", step, ["      i: ${{ matrix.i }}"] + dep_args(["src"]) + data,
            matrix(t["i"] for t in fan))
        # The fan-in: a matrix job's output is the list over its instances.
        job("sink", gather, [f"      i: {len(fan) + 1}", "      deps: ${{ jobs.fan.outputs.out }}"]
            + data)
    elif g["shape"] in ("chain", "lattice"):
        for t in tasks:
            job(t["id"], step, [f"      i: {t['i']}"] + dep_args(t["deps"]) + data)
    elif g["shape"] == "bigchain":
        n = tasks[0]["bytes"]
        # Outputs default to at most 1 GiB per job: allow the big artifact.
        limit = [f"    limits: {{ output: {max(n, 1 << 20) * 2} }}"]
        job("generate", "generate", [f"      bytes: {n}"], limit)
        job("copy", "copy", ["      input: ${{ jobs.generate.outputs.out }}"], limit)
        job("consume", "consume", ["      input: ${{ jobs.copy.outputs.out }}"])
    return "\n".join(lines) + "\n"


# --- files ----------------------------------------------------------------------

def write_blob(path, size=BLOB_BYTES):
    """The shared artifact of the hash work: deterministic bytes (k mod 251),
    written once."""
    if os.path.exists(path) and os.path.getsize(path) == size:
        return path
    os.makedirs(os.path.dirname(path), exist_ok=True)
    pattern = bytes(range(251))
    data = (pattern * (size // 251 + 1))[:size]
    with open(path + ".tmp", "wb") as f:
        f.write(data)
    os.replace(path + ".tmp", path)
    return path


def write(name, out_dir, tasks=DEFAULT_TASKS, big_bytes=DEFAULT_BIG_BYTES):
    """Writes `<out>/<name>.yaml` and `<out>/<name>.json` (only if changed, so
    reruns keep mtimes); returns (yaml path, json path, number of tasks)."""
    out_dir = os.path.abspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    blob = write_blob(os.path.join(out_dir, "blob-1MiB.bin")) if name.endswith("-hash") else None
    g = graph(name, tasks, big_bytes, blob)
    yaml_path = os.path.join(out_dir, f"{name}.yaml")
    json_path = os.path.join(out_dir, f"{name}.json")
    for path, text in ((yaml_path, cairn_yaml(g, yaml_path)), (json_path, json.dumps(g))):
        try:
            with open(path) as f:
                if f.read() == text:
                    continue
        except FileNotFoundError:
            pass
        with open(path, "w") as f:
            f.write(text)
    return yaml_path, json_path, len(g["tasks"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.join(HERE, "work", "shapes"))
    ap.add_argument("--shapes", help="comma-separated shapes or names (default: all)")
    ap.add_argument("--tasks", type=int, default=DEFAULT_TASKS)
    ap.add_argument("--big-bytes", type=int, default=DEFAULT_BIG_BYTES)
    args = ap.parse_args()
    for name in select(args.shapes):
        y, j, n = write(name, os.path.join(args.out, str(args.tasks)), args.tasks, args.big_bytes)
        print(f"{name}: {n} tasks: {y} {j}")


if __name__ == "__main__":
    main()
