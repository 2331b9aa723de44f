"""Process-group helpers: the same code runs as one process, under torchrun, or under the deepspeed launcher.

Rank and world size come from the launcher's environment, so modules that only need to know "am I the
writer?" (the fold trainer) do not import torch.
"""

from __future__ import annotations

import os
import socket
import sys
from typing import Any


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main() -> bool:
    """Only rank 0 writes artifacts and prints; every rank trains and predicts."""
    return rank() == 0


def free_port() -> int:
    """A TCP port nothing listens on now (rendezvous, test servers)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def init_process_group(backend: str) -> None:
    """Join (or, alone, create) the default process group; DeepSpeed needs one even for a single process."""
    import deepspeed
    import torch.distributed as dist

    if dist.is_initialized():
        return
    if world_size() == 1:
        for key, value in (("RANK", "0"), ("LOCAL_RANK", "0"), ("WORLD_SIZE", "1"), ("MASTER_ADDR", "127.0.0.1")):
            os.environ.setdefault(key, value)
        os.environ.setdefault("MASTER_PORT", str(free_port()))
    deepspeed.init_distributed(dist_backend=backend, verbose=False)


def _group() -> Any:
    """torch.distributed when a process group is up, else None. Without torch imported there is none, and a
    CPU family's run (the offline Kaggle package has no torch) never imports it."""
    if "torch" not in sys.modules:
        return None
    import torch.distributed as dist

    return dist if dist.is_available() and dist.is_initialized() else None


def all_gather_objects(obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order; just ``[obj]`` without a process group."""
    dist = _group()
    if dist is None or dist.get_world_size() == 1:
        return [obj]
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, obj)
    return gathered


def barrier() -> None:
    dist = _group()
    if dist is not None and dist.get_world_size() > 1:
        dist.barrier()


def shutdown() -> None:
    """Leave the process group together: every rank waits for the others (rank 0 may still be writing the
    fold folder), then the group is destroyed, so no rank exits while its communication threads still run
    (which aborts the process: "terminate called without an active exception")."""
    dist = _group()
    if dist is not None:
        barrier()
        dist.destroy_process_group()
