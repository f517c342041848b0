"""A last training batch of one image is left out: one image through a 1x1 BatchNorm map fails in training
("Expected more than 1 value per channel"), e.g. ResNet-18 at 32 px with 9 training images in batches of 4."""

from __future__ import annotations

import pytest
import torch

from engine import events as ev
from engine.distributed.world import World
from engine.loading import make_loader, train_steps
from engine.runs import folder as run


@pytest.mark.parametrize("n, batch, steps", [(9, 4, 2), (8, 4, 2), (10, 4, 3), (1, 4, 1), (5, 1, 5), (4, 3, 1)])
def test_a_training_loader_leaves_out_only_a_last_batch_of_one(n, batch, steps):
    data = torch.utils.data.TensorDataset(torch.arange(n))
    loader = make_loader(data, batch, True, 0, training=True)
    sizes = [len(b[0]) for b in loader]
    assert len(loader) == len(sizes) == train_steps(n, batch) == steps
    assert all(s > 1 for s in sizes) or sizes == [1] * len(sizes)
    assert sorted(len(b[0]) for b in make_loader(data, batch, False, 0)) == sorted([batch] * (n // batch)
                                                                                + [n % batch] * (n % batch > 0))


def test_the_training_order_is_the_one_the_seed_gave_before(tmp_path):
    data = torch.utils.data.TensorDataset(torch.arange(20))
    kept = [b[0].tolist() for b in make_loader(data, 4, True, 7, training=True)]
    plain = [b[0].tolist() for b in make_loader(data, 4, True, 7)]  # the loader a run used before
    assert kept == plain


class Steps(ev.Handler):
    def __init__(self):
        self.steps: list[int] = []

    def on_batch_ended(self, e):
        self.steps.append(e.step)


def test_resnet18_at_32px_trains_on_9_images_in_batches_of_4(project_factory, tmp_path):
    project = project_factory(per_class=4, model__arch="resnet18", train__batch_size=4, train__epochs=1,
                              data__val_fraction=0.25, train__device="cpu", train__amp=False)
    steps = Steps()
    _, result = run.train(project, tmp_path / "run", callbacks=[steps])
    assert len(result.history) == 1 and result.summary["train_size"] == 9
    assert steps.steps == [1, 2]  # 4 + 4: the ninth image is left out this epoch (another one the next)


def test_a_distributed_share_leaves_out_a_last_batch_of_one_on_every_rank():
    from engine.distributed import ddp

    data = torch.utils.data.TensorDataset(torch.arange(10))  # 5 per rank, 2 per rank and step: 2, 2, (1 left out)
    for rank in range(2):
        loader = ddp.train_loader(data, World(rank=rank, size=2, local_rank=rank), 4, 0)
        assert len(loader) == 2 and [len(b[0]) for b in loader] == [2, 2]
