#!/usr/bin/env python3
"""A generic REAPI worker that knows nothing of Cairn: it leases actions from
a BuildGrid server (Remote Workers API), materialises each action's input
root into a directory, runs the action's command there (with `cairn` on
PATH, as any REAPI worker with cairn installed would), and uploads the
files under the command's output paths as the action's result.

It exists to test that a Cairn job is an ordinary REAPI action. Run it with
the Python of BuildGrid's venv (it uses BuildGrid's generated protos):

    target/remote/venv/bin/python tests/remote/generic_worker.py URL [--once]

`--once` exits after one action. Only SHA-256 servers are supported.
"""

import hashlib
import os
import subprocess
import sys
import tempfile
import time

import grpc
from buildgrid._protos.build.bazel.remote.execution.v2 import remote_execution_pb2 as re
from buildgrid._protos.build.bazel.remote.execution.v2 import remote_execution_pb2_grpc as re_grpc
from buildgrid._protos.google.devtools.remoteworkers.v1test2 import bots_pb2, bots_pb2_grpc
from buildgrid._protos.google.devtools.remoteworkers.v1test2 import worker_pb2
from buildgrid._protos.google.rpc import code_pb2, status_pb2


def digest(data):
    return re.Digest(hash=hashlib.sha256(data).hexdigest(), size_bytes=len(data))


def read(cas, d):
    r = cas.BatchReadBlobs(re.BatchReadBlobsRequest(digests=[d]))
    resp = r.responses[0]
    if resp.status.code != 0:
        raise RuntimeError(f"blob {d.hash}: {resp.status.message}")
    if hashlib.sha256(resp.data).hexdigest() != d.hash:
        raise RuntimeError(f"blob {d.hash}: wrong bytes")
    return resp.data


def materialise(cas, d, path):
    os.makedirs(path, exist_ok=True)
    directory = re.Directory.FromString(read(cas, d))
    for f in directory.files:
        with open(os.path.join(path, f.name), "wb") as out:
            out.write(read(cas, f.digest))
    for sub in directory.directories:
        materialise(cas, sub.digest, os.path.join(path, sub.name))


def upload(cas, blobs):
    reqs = [re.BatchUpdateBlobsRequest.Request(digest=digest(b), data=b) for b in blobs]
    if reqs:
        cas.BatchUpdateBlobs(re.BatchUpdateBlobsRequest(requests=reqs))


def execute(cas, action):
    command = re.Command.FromString(read(cas, action.command_digest))
    with tempfile.TemporaryDirectory() as root:
        materialise(cas, action.input_root_digest, root)
        env = dict(os.environ)
        env.update({v.name: v.value for v in command.environment_variables})
        proc = subprocess.run(list(command.arguments), cwd=root, env=env, capture_output=True)
        result = re.ActionResult(exit_code=proc.returncode)
        blobs = [proc.stdout, proc.stderr]
        result.stdout_digest.CopyFrom(digest(proc.stdout))
        result.stderr_digest.CopyFrom(digest(proc.stderr))
        for out in command.output_paths:
            full = os.path.join(root, out)
            files = []
            if os.path.isfile(full):
                files = [out]
            elif os.path.isdir(full):
                for dirpath, _, names in os.walk(full):
                    files += [os.path.relpath(os.path.join(dirpath, n), root) for n in names]
            for rel in sorted(files):
                with open(os.path.join(root, rel), "rb") as f:
                    data = f.read()
                blobs.append(data)
                result.output_files.add(path=rel, digest=digest(data))
                if rel == "cairn.out.json" and os.environ.get("GENERIC_WORKER_DEBUG"):
                    print("  result file", data.decode(), flush=True)
        upload(cas, blobs)
        for f in result.output_files:
            print("  output", f.path, f.digest.hash, flush=True)
        print("  stdout", result.stdout_digest.hash, "stderr", result.stderr_digest.hash, flush=True)
        if proc.returncode != 0:
            print("  exit", proc.returncode, proc.stderr.decode(errors="replace")[-2000:], flush=True)
        return result


def main():
    url = sys.argv[1].replace("grpc://", "")
    once = "--once" in sys.argv
    channel = grpc.insecure_channel(url)
    bots = bots_pb2_grpc.BotsStub(channel)
    cas = re_grpc.ContentAddressableStorageStub(channel)
    device = worker_pb2.Device(handle="generic")
    for k, v in [("cairn-format", "1"), ("cairn-runtime", "wasm32-wasip2")]:
        device.properties.add(key=k, value=v)
    worker = worker_pb2.Worker(devices=[device])
    session = bots.CreateBotSession(
        bots_pb2.CreateBotSessionRequest(
            parent="", bot_session=bots_pb2.BotSession(bot_id=f"generic-{os.getpid()}", status=1, worker=worker)
        ),
        timeout=30,
    )
    print("generic worker serving", url, flush=True)
    done = 0
    while True:
        for lease in session.leases:
            if lease.state != bots_pb2.LeaseState.ACTIVE:
                continue
            action = re.Action()
            lease.payload.Unpack(action)
            print("leased", lease.id, flush=True)
            result = execute(cas, action)
            lease.state = bots_pb2.LeaseState.COMPLETED
            lease.status.CopyFrom(status_pb2.Status(code=code_pb2.OK))
            lease.result.Pack(result)
            done += 1
        session = bots.UpdateBotSession(
            bots_pb2.UpdateBotSessionRequest(name=session.name, bot_session=session), timeout=30
        )
        if once and done and not any(l.state == bots_pb2.LeaseState.ACTIVE for l in session.leases):
            return
        time.sleep(0.05)


if __name__ == "__main__":
    main()
