#!/usr/bin/env python3
"""Runs one benchmark graph (a JSON file from shapes.py) on one Python
scheduler, as a whole process, and prints one JSON line: the sinks'
checksum (to check every runner computed the same thing) and the time of
each phase inside the process.

    python peers.py PEER GRAPH.json

PEER is one of:
  dask-threads      Dask's threaded scheduler, 2 workers
  dask-distributed  a local `distributed` cluster of 2 worker processes
                    (1 thread each), bound to 127.0.0.1, no dashboard
  ray               ray.init(num_cpus=2), bound to 127.0.0.1, no dashboard
  prefect           Prefect 3 tasks in a flow, a thread-pool task runner of
                    2 workers, against Prefect's temporary local server
                    (PREFECT_API_URL unset; PREFECT_HOME from the environment)

Each is written the way its documentation shows: dask.delayed, Ray remote
functions, Prefect @task/.submit. Dependencies are passed as arguments (the
scheduler resolves them), exactly as Cairn's `${{ jobs.X.outputs.out }}`.
Run it under the venv bench/run makes (it has the pinned packages).
"""

import json
import os
import sys
import time

T0 = time.perf_counter()  # after interpreter startup; bench/run measures that too
MASK = (1 << 64) - 1

# --- the work: the same functions the Cairn guest exports (tasks/bench) ---------


def _blake3():
    from blake3 import blake3  # the same hash as the Cairn guest

    return blake3


def t_noop(i):
    return i


def t_step(i, *deps):
    return (i + sum(deps)) & MASK


def t_hash(i, path, *deps):
    # Each task reads the shared artifact itself, as each Cairn job does
    # from the store (the page cache serves both).
    with open(path, "rb") as f:
        data = f.read()
    head = int.from_bytes(_blake3()(data).digest()[:8], "little")
    return ((i + sum(deps)) & MASK) ^ head


def t_generate(n):
    # b[k] = k mod 251, built by doubling in place: one buffer of n bytes,
    # no second copy (the Cairn guest streams it in 1 MiB blocks).
    buf = bytearray(n)
    first = min(n, 251)
    buf[:first] = bytes(range(251))[:first]
    filled = first
    while filled < n:
        step = min(filled, n - filled)
        buf[filled:filled + step] = buf[:step]  # filled is a multiple of 251
        filled += step
    return buf


def t_copy(a):
    return bytearray(a)  # a real copy


def t_consume(a):
    return _blake3()(a).hexdigest()


FNS = {"noop": t_noop, "step": t_step, "hash": t_hash,
       "generate": t_generate, "copy": t_copy, "consume": t_consume}


def args_of(task, graph, deps):
    """Positional arguments of `task`, `deps` being its dependencies' handles
    (futures, delayed objects, object refs) in order."""
    fn = task["fn"]
    if fn == "noop":
        return [task["i"]]
    if fn == "step":
        return [task["i"], *deps]
    if fn == "hash":
        return [task["i"], graph["artifact"], *deps]
    if fn == "generate":
        return [task["bytes"]]
    return list(deps)  # copy, consume: the one upstream artifact


def build(graph, submit):
    """Walks the graph in order, calling submit(fn_name, args) for each task;
    returns the sinks' handles."""
    handles = {}
    for t in graph["tasks"]:
        handles[t["id"]] = submit(t["fn"], args_of(t, graph, [handles[d] for d in t["deps"]]))
    return [handles[s] for s in graph["sinks"]]


def checksum(values):
    """One comparable value for the sinks' results."""
    if all(isinstance(v, int) for v in values):
        return str(sum(values) & MASK)
    return ",".join(str(v) for v in values)


# --- the peers ------------------------------------------------------------------


def dask_threads(graph, phase):
    import dask

    phase("import")
    sinks = build(graph, lambda fn, args: dask.delayed(FNS[fn])(*args))
    phase("graph")
    values = dask.compute(*sinks, scheduler="threads", num_workers=2)
    phase("compute")
    return values


def dask_distributed(graph, phase):
    import dask
    from distributed import Client, LocalCluster

    phase("import")
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                           host="127.0.0.1", dashboard_address=None)
    client = Client(cluster)
    phase("init")
    sinks = build(graph, lambda fn, args: dask.delayed(FNS[fn])(*args))
    phase("graph")
    values = dask.compute(*sinks)  # the active Client runs it
    phase("compute")
    client.close()
    cluster.close()
    phase("shutdown")
    return values


def ray_peer(graph, phase):
    import ray

    phase("import")
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1",
             _temp_dir=os.environ.get("BENCH_RAY_TMP"), log_to_driver=False,
             configure_logging=False)
    phase("init")
    remote = {name: ray.remote(fn) for name, fn in FNS.items()}
    sinks = build(graph, lambda fn, args: remote[fn].remote(*args))
    phase("graph")  # submission is asynchronous: work overlaps this phase
    values = ray.get(sinks)
    phase("compute")
    ray.shutdown()
    phase("shutdown")
    return values


def prefect_peer(graph, phase):
    from prefect import flow, task
    from prefect.futures import wait
    from prefect.task_runners import ThreadPoolTaskRunner

    phase("import")
    tasks = {name: task(fn, name=name) for name, fn in FNS.items()}

    @flow(name=graph["name"], task_runner=ThreadPoolTaskRunner(max_workers=2))
    def run():
        futures = []

        def submit(fn, args):
            f = tasks[fn].submit(*args)
            futures.append(f)
            return f

        sinks = build(graph, submit)
        wait(futures)
        return [s.result() for s in sinks]

    values = run()  # the temporary server starts inside; its time is in here
    phase("flow")
    return values


PEERS = {"dask-threads": dask_threads, "dask-distributed": dask_distributed,
         "ray": ray_peer, "prefect": prefect_peer}


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in PEERS:
        sys.exit(f"usage: peers.py {{{'|'.join(PEERS)}}} GRAPH.json")
    peer, path = sys.argv[1], sys.argv[2]
    with open(path) as f:
        graph = json.load(f)
    phases = {}
    last = [T0]

    def phase(name):
        now = time.perf_counter()
        phases[name] = round(now - last[0], 4)
        last[0] = now

    values = PEERS[peer](graph, phase)
    # One line on stdout for bench/run; everything else the schedulers print
    # goes to stderr or is logged.
    print(json.dumps({"peer": peer, "name": graph["name"], "tasks": len(graph["tasks"]),
                      "checksum": checksum(list(values)), "phases": phases}), flush=True)


if __name__ == "__main__":
    main()
