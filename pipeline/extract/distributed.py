"""Running `sgmft extract` under PyTorch's launcher: ranks from torchrun's environment, and a process group
that makes every rank stop when one fails.

The group only carries each rank's "ok" or its error at a few sync points, never features (those go
through the shard files), so it is always gloo: it needs no GPU, and its timeout is enforced. Under
torchrun a rank that dies outright takes the others down with it; the timeout covers launches
without torchrun's agent.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Callable, Mapping, TypeVar

import torch

from sgmft_cache import SgmftError
from pipeline.device import AUTO

T = TypeVar("T")


@dataclass(frozen=True)
class Ranks:
    """Where this process stands among the extraction's processes (torchrun's environment variables)."""

    rank: int = 0  # RANK: this process among all of them
    world_size: int = 1  # WORLD_SIZE: processes in all, over all nodes
    local_rank: int = 0  # LOCAL_RANK: this process on its node: its GPU
    local_world_size: int = 1  # LOCAL_WORLD_SIZE: processes on this node, sharing its cores

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> "Ranks":
        try:
            values = {name: int(env.get(key, default)) for name, key, default in (
                ("rank", "RANK", 0), ("world_size", "WORLD_SIZE", 1),
                ("local_rank", "LOCAL_RANK", 0), ("local_world_size", "LOCAL_WORLD_SIZE", 1))}
        except ValueError:
            raise SgmftError("RANK, WORLD_SIZE, LOCAL_RANK and LOCAL_WORLD_SIZE must be integers (torchrun sets them)") from None
        ranks = cls(**values)
        if not 0 <= ranks.rank < ranks.world_size:
            raise SgmftError(f"RANK={ranks.rank} does not lie in 0..WORLD_SIZE-1 (WORLD_SIZE={ranks.world_size})")
        return ranks

    @property
    def sharded(self) -> bool:
        return self.world_size > 1

    def __str__(self) -> str:
        return f"rank {self.rank} of {self.world_size}"

    def device(self, requested: str) -> str:
        """Each rank on its own GPU: `auto` and `cuda` mean cuda:LOCAL_RANK when sharded on a CUDA machine."""
        if self.sharded and requested in (AUTO, "cuda") and torch.cuda.is_available():
            return f"cuda:{self.local_rank}"
        return requested


class Group:
    """The ranks' process group for the length of a `with` block (nothing at all for one process)."""

    def __init__(self, ranks: Ranks, timeout_s: float):
        self.ranks, self.timeout_s = ranks, timeout_s

    def __enter__(self) -> "Group":
        if self.ranks.sharded:
            import torch.distributed as dist

            dist.init_process_group("gloo", rank=self.ranks.rank, world_size=self.ranks.world_size,
                                    timeout=timedelta(seconds=self.timeout_s))
        return self

    def __exit__(self, *exc) -> None:
        if self.ranks.sharded:
            import torch.distributed as dist

            dist.destroy_process_group()

    def together(self, step: Callable[[], T], what: str) -> T:
        """Run `step` on every rank, then wait for all; when it failed on any rank, raise on every rank.

        The failing rank raises its own error (a user error prefixed with its rank); the others raise
        an SgmftError naming the rank that failed and why, instead of waiting for it at the next step."""
        try:
            result, error = step(), None
        except Exception as e:  # reported to the other ranks, then raised here
            result, error = None, e
        if not self.ranks.sharded:
            if error is not None:
                raise error
            return result
        import torch.distributed as dist

        statuses: list[str | None] = [None] * self.ranks.world_size
        dist.all_gather_object(statuses, None if error is None else f"{type(error).__name__}: {error}")
        if isinstance(error, SgmftError):
            raise type(error)(f"{self.ranks}: {error}") from None
        if error is not None:
            raise error
        failed = [(rank, status) for rank, status in enumerate(statuses) if status is not None]
        if failed:
            rank, status = failed[0]
            raise SgmftError(f"{self.ranks} stops: rank {rank} of {self.ranks.world_size} failed while {what} "
                             f"({status})" + (f"; {len(failed) - 1} other rank(s) failed too" if len(failed) > 1 else ""))
        return result
