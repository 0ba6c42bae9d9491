"""Data-parallel training on one machine with every port on loopback::

    python -m pipeline.training.ddp --nproc-per-node 2 stages.train_region   # (or any module, then its args)

``torchrun --nproc_per_node=2 ...`` opens its rendezvous store (a c10d TCPStore) on every interface, whatever
``--master_addr`` or ``--rdzv-endpoint`` say (measured with torch 2.14: ``*:PORT``, and ``*:PORT`` for a second
store with ``--standalone``), and the store has no authentication: anyone who reaches it can take part in the
rendezvous. This launcher does what torchrun does for one node, with the ports pinned to loopback:

* it binds the store's socket itself on 127.0.0.1 (a free port) and hands it to the ``TCPStore``
  (``master_listen_fd``), so the store never listens elsewhere;
* the ranks run with ``TORCHELASTIC_USE_AGENT_STORE=True``: ``init_process_group`` (env://, as
  ``pipeline/training/runner.py`` calls it) connects to that store instead of rank 0 opening another;
* ``GLOO_SOCKET_IFNAME=lo`` and ``NCCL_SOCKET_IFNAME=lo`` (unless set) keep the collectives' own sockets on
  loopback (gloo otherwise binds the address the host name resolves to).

Loopback is still reachable by other accounts on the machine, and c10d authenticates nobody: on a shared machine
the ports exist for the run's length. Several machines: see README "Security notes".
"""
from __future__ import annotations

import argparse
import datetime
import os
import socket
import subprocess
import sys
import time

from pipeline.core.subprocesses import stop

LOOPBACK = "127.0.0.1"


def rank_env(rank: int, world: int, port: int) -> dict[str, str]:
    """The environment torchrun gives rank ``rank`` of a one-node job, pointed at the launcher's store."""
    env = {**os.environ, "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world),
           "LOCAL_WORLD_SIZE": str(world), "GROUP_RANK": "0", "ROLE_RANK": str(rank), "ROLE_WORLD_SIZE": str(world),
           "MASTER_ADDR": LOOPBACK, "MASTER_PORT": str(port), "TORCHELASTIC_USE_AGENT_STORE": "True"}
    env.setdefault("GLOO_SOCKET_IFNAME", "lo")
    env.setdefault("NCCL_SOCKET_IFNAME", "lo")
    env.setdefault("OMP_NUM_THREADS", "1")  # as torchrun: N ranks on one machine must not each take every core
    return env


def launch(module: str, args: list[str], nproc: int, timeout_s: float = 1800.0) -> int:
    """Run ``python -m module args`` as ``nproc`` ranks; the exit code of the first rank to fail, else 0. A rank
    that fails stops the others (they would wait for it in the next collective)."""
    import torch.distributed as dist

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind((LOOPBACK, 0))
    listener.listen(128)
    port = listener.getsockname()[1]
    store = dist.TCPStore(LOOPBACK, port, nproc, True, datetime.timedelta(seconds=timeout_s),
                          wait_for_workers=False, master_listen_fd=listener.fileno())
    listener.detach()  # the store owns (and closes) the socket now
    ranks = [subprocess.Popen([sys.executable, "-m", module, *args], env=rank_env(rank, nproc, port))
             for rank in range(nproc)]
    code = 0
    try:
        while any(rank.poll() is None for rank in ranks):
            failed = [rank.returncode for rank in ranks if rank.returncode not in (None, 0)]
            if failed:
                code = failed[0]
                break
            time.sleep(0.2)
        code = code or next((rank.returncode for rank in ranks if rank.returncode), 0)
    finally:
        for rank in ranks:
            if rank.poll() is None:
                rank.terminate()  # all at once: a rank waits for the others in its collectives
        for rank in ranks:
            stop(rank)
        del store
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="one-machine DDP launcher with every port on 127.0.0.1")
    parser.add_argument("--nproc-per-node", type=int, default=2, help="ranks (processes) to start")
    parser.add_argument("module", help="module to run in every rank, e.g. stages.train_region")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the module")
    args = parser.parse_args(argv)
    if args.nproc_per_node < 1:
        print("error: --nproc-per-node must be at least 1", file=sys.stderr)
        return 2
    return launch(args.module, args.args, args.nproc_per_node)


if __name__ == "__main__":
    sys.exit(main())
