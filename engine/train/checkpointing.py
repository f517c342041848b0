"""Checkpoints of `engine.train.loop.fit`, and what they are for while it runs: the state after each epoch, kept
in memory and written to the run folder's sink. Out of memory in a step goes back to the last one and runs the
epoch again with half as many images per forward pass (`retry_smaller`), down to one image.
"""

from __future__ import annotations

import gc

import torch

from engine.project import to_dict
from engine.train import state as st


class Checkpointing:
    """The checkpointing part of `engine.train.loop._Fit` (a mixin): uses its state, loader, project, sink and
    `micro`."""

    def checkpoint(self, write: bool = True) -> st.Checkpoint:
        """The state now, in memory (for out-of-memory retries) and, if `write`, in the run folder (for resuming)."""
        c = st.capture(self.state, project=to_dict(self.project), classes=self.data.classes,
                         micro_batch=self.micro, load_failures=self.load_failures,
                         loader_generator=self.train_loader.generator, split=self.split)
        if self.checkpoints is not None and write:
            self.checkpoints.write(c)
        return c

    def _free_memory(self) -> None:
        self.state.optimizer.zero_grad(set_to_none=True)
        if gc.isenabled():  # else the program collects in a thread of its choosing (a Qt window: its GUI thread)
            gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    def retry_smaller(self, epoch: int, error: str) -> None:
        """Free what the failed step held, go back to the last checkpoint and run the epoch again with half
        as many images per pass."""
        self._free_memory()
        before, self.micro = self.micro, max(1, self.micro // 2)
        st.restore(self.last_checkpoint, self.state, self.train_loader.generator)
        self.oom_retries.append({"epoch": epoch, "images_per_pass": self.micro, "error": error})
        self.log(f"out of memory in epoch {epoch} with {before} images per pass ({error}); running the epoch "
                 f"again with {self.micro} images per pass (the batch size of {self.project.train.batch_size} "
                 "is kept by adding up the gradients of the parts)", "warning")
