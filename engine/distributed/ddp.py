"""DistributedDataParallel around the trained module, and how the data is shared out among the ranks.

`wrap` is the one place a module is put in DDP, at the start and again whenever the set of trainable parameters
changes: DDP averages the gradients only of the parameters that required grad when it was built, so a layer
unfrozen later would train on each process's own gradient and drift apart (Lightning#20340; reproduced: 1.5e-2
from single-process training without re-wrapping, 3e-8 with it).

`train.batch_size` is the batch of one optimizer step over all processes: each rank takes `per_rank_batch` of
it, and with a mean-reduced loss DDP's average of the ranks' gradients is the whole batch's gradient. The
training data is shuffled by a `DistributedSampler` seeded from the project's seed (`train_sampler`); the
validation batches are dealt out whole (`DealtBatches`), so every image is evaluated exactly once, each batch
as one process would make it.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler, Subset
from torch.utils.data.distributed import DistributedSampler

from engine.distributed.world import World
from engine.errors import ProjectError
from engine.loading import make_loader


def wrap(module: nn.Module, world: World) -> nn.Module:
    """`module` in DDP over the parameters that require grad now (`module` itself in a single process).

    Call it again after every change of which parameters train, on every rank at the same step: it is a
    collective (rank 0's parameters and buffers are copied to the others), and the previous wrapper is dropped.
    """
    if not world.distributed or not any(p.requires_grad for p in module.parameters()):
        return module
    from torch.nn.parallel import DistributedDataParallel

    device = next(module.parameters()).device
    # DDP copies rank 0's buffers (BatchNorm's statistics) to the others before each training forward
    return DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None)


def no_sync(trained: nn.Module, sync: bool):
    """Around a backward pass that is not the last of a step (the step's batch in parts): no gradient exchange
    until the last part, whose exchange carries the sum."""
    if sync or not hasattr(trained, "no_sync"):
        return contextlib.nullcontext()
    return trained.no_sync()


def per_rank_batch(batch_size: int, world: World) -> int:
    """Images per rank and step; `ProjectError` when `train.batch_size` does not divide among the processes."""
    if batch_size % world.size:
        lower, upper = (batch_size // world.size) * world.size, -(-batch_size // world.size) * world.size
        options = " or ".join(str(b) for b in (lower, upper) if b > 0)
        raise ProjectError("train.batch_size", f"{batch_size} images per step do not divide among {world.size} "
                                               f"processes; use a multiple of {world.size} ({options})")
    return batch_size // world.size


def train_sampler(dataset: Dataset, world: World, seed: int) -> DistributedSampler | None:
    """This rank's share of the training images, reshuffled each epoch (`set_epoch`) from the project's seed;
    None in a single process (the loader shuffles itself). A share is padded with a few repeated images so all
    ranks take the same number of steps."""
    if not world.distributed:
        return None
    return DistributedSampler(dataset, num_replicas=world.size, rank=world.rank, shuffle=True, seed=seed,
                              drop_last=False)


def train_loader(dataset: Dataset, world: World, batch_size: int, seed: int, **kw) -> DataLoader:
    """This rank's share of the training images (all of them in one process), `per_rank_batch` at a time."""
    return make_loader(dataset, per_rank_batch(batch_size, world), True, seed,
                       sampler=train_sampler(dataset, world, seed), training=True, **kw)


def val_loader(dataset: Dataset, world: World, batch_size: int, seed: int, **kw) -> DataLoader:
    """The validation batches this rank evaluates (all of them in one process), in order; its sampler (a
    `DealtBatches`) says which batches of the pass they are."""
    return make_loader(dataset, batch_size, False, seed, sampler=DealtBatches(len(dataset), batch_size, world), **kw)


def set_epoch(loader: DataLoader, epoch: int) -> None:
    if isinstance(loader.sampler, DistributedSampler):
        loader.sampler.set_epoch(epoch)


class DealtBatches(Sampler[int]):
    """The images of the batches ``rank, rank + size, ...`` of a pass in order with `batch_size` per batch: a
    loader with that batch size over these indices makes exactly those batches, so every image is evaluated
    once (no padding) and each batch holds what it holds in a single process."""

    def __init__(self, n: int, batch_size: int, world: World) -> None:
        self.n, self.batch_size, self.world = n, batch_size, world

    @property
    def total(self) -> int:
        """How many batches the pass has, over all ranks."""
        return math.ceil(self.n / self.batch_size)

    def batches(self) -> range:
        """The indices of this rank's batches among all `total`."""
        return range(self.world.rank, self.total, self.world.size)

    def __iter__(self) -> Iterator[int]:
        for b in self.batches():
            yield from range(b * self.batch_size, min(self.n, (b + 1) * self.batch_size))

    def __len__(self) -> int:
        return sum(min(self.n, (b + 1) * self.batch_size) - b * self.batch_size for b in self.batches())


def shard(dataset: Dataset, world: World) -> Dataset:
    """This rank's contiguous part of `dataset` (the whole of it in a single process): parts in rank order make
    the whole, in order."""
    if not world.distributed:
        return dataset
    n = len(dataset)
    start, stop = n * world.rank // world.size, n * (world.rank + 1) // world.size
    return Subset(dataset, range(start, stop))
