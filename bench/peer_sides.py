"""The peers' side of `bench/peers.py`: one fine-tune in fastai, PyTorch Lightning or a bare PyTorch loop, as a
person would write it, run in the peers' own virtual environment (not Thaw's: fastai and Lightning are no
dependencies of Thaw). Only the model's class comes from Thaw (the demo CNN), never its training code.

    python bench/peer_sides.py SIDE SPEC.json      # SIDE: bare, bare_cached, lightning, fastai

It prints ``epoch N`` (flushed) as each epoch ends, for the parent to time, and ``result {...}`` last: the final
validation accuracy and the seconds each epoch took in this process.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # for the demo CNN's class only

import torch  # noqa: E402
from torch import nn  # noqa: E402

TRAINED = {"resnet18": {"last_blocks": ["layer4"], "full": ["conv1", "bn1", "layer1", "layer2", "layer3", "layer4"]},
           "thaw_digits_cnn": {"last_blocks": ["block3"], "full": ["stem", "block1", "block2", "block3"]}}


def build_model(spec: dict) -> nn.Module:
    """The architecture with the spec's initial weights file loaded, then a new linear head `fc`."""
    from safetensors.torch import load_file

    if spec["arch"] == "resnet18":
        import torchvision

        model = torchvision.models.resnet18(weights=None)
    else:
        from engine.model.digits_cnn import DigitsCNN, load_meta

        meta = load_meta()
        model = DigitsCNN(num_classes=len(meta["classes"]), widths=tuple(meta["widths"]))
    model.load_state_dict(load_file(spec["weights"]))
    torch.manual_seed(spec["seed"])
    model.fc = nn.Linear(model.fc.in_features, spec["classes"])
    return model


def trained_children(spec: dict) -> list[str]:
    """The top-level modules that train besides `fc` for the spec's recipe."""
    return TRAINED[spec["arch"]].get(spec["preset"], [])


def torchvision_transforms(spec: dict, train: bool):
    """Thaw's resize/crop/normalise, written out with torchvision: the same pixels for the bare loop and Lightning."""
    from torchvision.transforms import v2

    size, mean, std = spec["size"], spec["mean"], spec["std"]
    tail = [v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)]
    if train and spec["augment"] == "light":
        return v2.Compose([v2.RandomResizedCrop(size, scale=(0.6, 1.0), antialias=True), v2.RandomHorizontalFlip(),
                           *tail])
    return v2.Compose([v2.Resize(spec["resize"], antialias=True), v2.CenterCrop(size), *tail])


def loaders(spec: dict):
    import torchvision

    g = torch.Generator()
    g.manual_seed(spec["seed"])
    train = torchvision.datasets.ImageFolder(spec["train"], torchvision_transforms(spec, True))
    val = torchvision.datasets.ImageFolder(spec["val"], torchvision_transforms(spec, False))
    dl = torch.utils.data.DataLoader
    return (dl(train, spec["batch"], shuffle=True, generator=g, num_workers=spec["workers"]),
            dl(val, spec["batch"], num_workers=spec["workers"]))


def groups(model: nn.Module, spec: dict) -> list[dict]:
    """AdamW groups: the head at lr, the trainable backbone at lr * backbone_lr_mult."""
    lr = spec["lr"]
    out = [{"params": list(model.fc.parameters()), "lr": lr}]
    backbone = [p for n in trained_children(spec) for p in getattr(model, n).parameters()]
    if backbone:
        out.append({"params": backbone, "lr": lr * spec["backbone_lr_mult"]})
    return out


def freeze(model: nn.Module, spec: dict) -> list[nn.Module]:
    """requires_grad off outside the trained modules; returns the frozen modules (kept in eval mode)."""
    keep = {"fc", *trained_children(spec)}
    frozen = [m for n, m in model.named_children() if n not in keep]
    for m in frozen:
        m.requires_grad_(False)
    return frozen


def set_modes(model: nn.Module, frozen: list[nn.Module]) -> None:
    model.train()
    for m in frozen:
        m.eval()


class Clock:
    """Prints each epoch's end for the parent and keeps the seconds between ends."""

    def __init__(self) -> None:
        self.last, self.seconds = time.perf_counter(), []

    def epoch_ended(self) -> None:
        now = time.perf_counter()
        self.seconds.append(now - self.last)
        self.last = now
        print(f"epoch {len(self.seconds)}", flush=True)


def trainable(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def accuracy(model: nn.Module, loader) -> float:
    model.eval()
    correct = seen = 0
    with torch.no_grad():
        for x, y in loader:
            correct += int((model(x).argmax(1) == y).sum())
            seen += len(y)
    return correct / seen


# ---------------------------------------------------------------- the sides


def bare(spec: dict, clock: Clock) -> float:
    """The loop a person writes by hand: the same groups, one-cycle schedule stepped per batch, frozen BN in eval."""
    model = build_model(spec)
    frozen = freeze(model, spec)
    train, val = loaders(spec)
    opt = torch.optim.AdamW(groups(model, spec), lr=spec["lr"], weight_decay=spec["weight_decay"])
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, [g["lr"] for g in opt.param_groups],
                                                total_steps=spec["epochs"] * len(train))
    loss_fn = nn.CrossEntropyLoss()
    acc = 0.0
    for _ in range(spec["epochs"]):
        set_modes(model, frozen)
        for x, y in train:
            loss = loss_fn(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        acc = accuracy(model, val)
        clock.epoch_ended()
    spec["trainable"] = trainable(model)
    return acc


def bare_cached(spec: dict, clock: Clock) -> float:
    """Feature extraction with the features computed once by hand (what a person writes when they know the
    trick: no framework here does it for them), then the head trained on them."""
    assert spec["preset"] == "feature_extraction" and spec["augment"] == "none"
    model = build_model(spec)
    freeze(model, spec)
    head, model.fc = model.fc, nn.Identity()
    model.eval()
    train, val = loaders(spec)

    def features(loader):
        with torch.no_grad():
            xs, ys = zip(*((model(x), y) for x, y in loader), strict=True)
        return torch.cat(xs), torch.cat(ys)

    (tx, ty), (vx, vy) = features(train), features(val)
    g = torch.Generator()
    g.manual_seed(spec["seed"])
    steps = -(-len(ty) // spec["batch"])
    opt = torch.optim.AdamW(head.parameters(), lr=spec["lr"], weight_decay=spec["weight_decay"])
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, spec["lr"], total_steps=spec["epochs"] * steps)
    loss_fn = nn.CrossEntropyLoss()
    acc = 0.0
    for _ in range(spec["epochs"]):
        head.train()
        for idx in torch.randperm(len(ty), generator=g).split(spec["batch"]):
            loss = loss_fn(head(tx[idx]), ty[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        head.eval()
        with torch.no_grad():
            acc = float((head(vx).argmax(1) == vy).float().mean())
        clock.epoch_ended()
    spec["trainable"] = trainable(head)
    return acc


def lightning(spec: dict, clock: Clock) -> float:
    """A LightningModule with a manual freeze (BackboneFinetuning unfreezes over epochs, a different recipe), the
    Trainer's defaults but for the progress bar and the model summary (their printing only)."""
    import pytorch_lightning as pl

    class Module(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.model = build_model(spec)
            self.frozen = freeze(self.model, spec)
            self.loss = nn.CrossEntropyLoss()

        def forward(self, x):
            return self.model(x)

        def on_train_epoch_start(self) -> None:
            set_modes(self.model, self.frozen)

        def training_step(self, batch, _i):
            x, y = batch
            return self.loss(self(x), y)

        def validation_step(self, batch, _i):
            x, y = batch
            out = self(x)
            self.log("val_acc", (out.argmax(1) == y).float().mean(), batch_size=len(y))

        def configure_optimizers(self):
            opt = torch.optim.AdamW(groups(self.model, spec), lr=spec["lr"], weight_decay=spec["weight_decay"])
            sched = torch.optim.lr_scheduler.OneCycleLR(opt, [g["lr"] for g in opt.param_groups],
                                                        total_steps=self.trainer.estimated_stepping_batches)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    class Timer(pl.Callback):
        def on_validation_epoch_end(self, trainer, _module) -> None:
            if not trainer.sanity_checking:
                clock.epoch_ended()

    train, val = loaders(spec)
    trainer = pl.Trainer(max_epochs=spec["epochs"], accelerator="cpu", devices=1, callbacks=[Timer()],
                         enable_progress_bar=False, enable_model_summary=False, default_root_dir=spec["workdir"])
    module = Module()
    trainer.fit(module, train, val)
    spec["trainable"] = trainable(module.model)
    return float(trainer.callback_metrics["val_acc"])


def fastai(spec: dict, clock: Clock) -> float:
    """`vision_learner` on the same folders through fastai's own data pipeline, the same freeze depth
    (`freeze_to` over body / last block / head groups, frozen BatchNorm kept in eval: `train_bn=False` and
    `BnFreeze`), then `fit_one_cycle` with torch's one-cycle shape (pct_start 0.3, final division 1e4); its Adam
    with torch's AdamW constants and weight decay on every parameter, the head's default initialisation."""
    from functools import partial

    import numpy as np
    from fastai.callback.training import BnFreeze
    from fastai.vision.all import (
        Adam,
        Callback,
        CategoryBlock,
        CropPad,
        DataBlock,
        FlipItem,
        GrandparentSplitter,
        ImageBlock,
        Normalize,
        RandomResizedCrop,
        Resize,
        ResizeMethod,
        accuracy,
        get_image_files,
        params,
        parent_label,
        vision_learner,
    )

    size = spec["size"]
    if spec["augment"] == "light":
        items = [RandomResizedCrop(size, min_scale=0.6, ratio=(3 / 4, 4 / 3)), FlipItem(0.5)]
    else:
        items = [Resize(spec["resize"], method=ResizeMethod.Squish), CropPad(size)]  # square images: Thaw's geometry
    block = DataBlock(blocks=(ImageBlock, CategoryBlock), get_items=get_image_files, get_y=parent_label,
                      splitter=GrandparentSplitter(train_name=Path(spec["train"]).name, valid_name=Path(spec["val"]).name),
                      item_tfms=items, batch_tfms=[Normalize.from_stats(spec["mean"], spec["std"])])
    dls = block.dataloaders(Path(spec["train"]).parent, bs=spec["batch"], num_workers=spec["workers"],
                            seed=spec["seed"])
    def arch(pretrained: bool = True) -> nn.Module:
        return build_model(spec)

    def head() -> nn.Module:
        model = build_model(spec)
        pool = [getattr(model, "avgpool", None) or model.pool, nn.Flatten()]
        return nn.Sequential(*pool, model.fc)

    n_body = {"resnet18": 8, "thaw_digits_cnn": 4}[spec["arch"]]  # the children before the pool

    def splitter(m: nn.Module):
        body = list(m[0].children())
        split = n_body - 1  # the last block of the body
        return [params(nn.Sequential(*body[:split])), params(nn.Sequential(*body[split:])), params(m[1])]

    class Timer(Callback):
        def after_epoch(self) -> None:
            clock.epoch_ended()

    learn = vision_learner(dls, arch, normalize=False, n_out=spec["classes"], pretrained=True, cut=n_body,
                           custom_head=head(), init=None, splitter=splitter, opt_func=partial(Adam, sqr_mom=0.999, eps=1e-8),
                           wd=spec["weight_decay"], wd_bn_bias=True, train_bn=False, metrics=accuracy,
                           cbs=[BnFreeze(), Timer()], path=spec["workdir"])
    learn.freeze_to({"feature_extraction": -1, "last_blocks": -2, "full": 0}[spec["preset"]])
    lr, mult = spec["lr"], spec["backbone_lr_mult"]
    with learn.no_bar(), learn.no_logging():
        learn.fit_one_cycle(spec["epochs"], lr_max=np.array([lr * mult, lr * mult, lr]), pct_start=0.3,
                            div_final=1e4)
    spec["trainable"] = sum(p.numel() for p in learn.model.parameters() if p.requires_grad)
    return float(learn.recorder.values[-1][-1])


SIDES = {"bare": bare, "bare_cached": bare_cached, "lightning": lightning, "fastai": fastai}


def main() -> int:
    side, spec_file = sys.argv[1], sys.argv[2]
    spec = json.loads(Path(spec_file).read_text())
    torch.set_num_threads(spec["threads"])
    clock = Clock()
    acc = SIDES[side](spec, clock)
    print("result " + json.dumps({"val_accuracy": acc, "epoch_seconds": clock.seconds,
                                  "trainable": spec["trainable"]}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
