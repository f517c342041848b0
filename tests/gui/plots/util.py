"""Events to feed the plots: single batches and epochs, and whole runs shaped like real ones."""

import numpy as np

from engine.events import BatchEnded, EpochEnded


def batch(step: int, steps_per_epoch: int = 10, loss: float = 1.0, lr: float = 1e-3) -> BatchEnded:
    return BatchEnded(epoch=(step - 1) // steps_per_epoch + 1, step=(step - 1) % steps_per_epoch + 1,
                      steps_per_epoch=steps_per_epoch, global_step=step, loss=loss, accuracy=0.5,
                      lr=lr, images_per_second=100.0 + step, eta_seconds=5.0)


def epoch(n: int, val_acc: float, val_loss: float | None = None, epochs: int = 3) -> EpochEnded:
    return EpochEnded(epoch=n, epochs=epochs, train_loss=1.0 / n, train_accuracy=val_acc - 0.1,
                      val_loss=1.2 / n if val_loss is None else val_loss, val_accuracy=val_acc, lr=1e-3,
                      seconds=1.0, images_per_second=100.0, eta_seconds=1.0, best_val_accuracy=val_acc,
                      is_best=True)


def run(plots, val_losses, val_accs, steps_per_epoch: int = 10) -> None:
    """One epoch at a time, as the window feeds them: a noisy loss falling from 2 to 0.1 over the run, a
    cosine-decaying learning rate, and the given validation losses and accuracies."""
    epochs = len(val_losses)
    n = epochs * steps_per_epoch
    noise = np.random.default_rng(0).normal(0, 0.05, n)
    for e in range(1, epochs + 1):
        steps = range((e - 1) * steps_per_epoch + 1, e * steps_per_epoch + 1)
        plots.add_batches([batch(s, steps_per_epoch, loss=2.0 * 0.05 ** ((s - 1) / (n - 1)) * (1 + noise[s - 1]),
                                 lr=5e-4 * (1 + np.cos(np.pi * (s - 1) / n))) for s in steps])
        plots.add_epoch(epoch(e, val_accs[e - 1], val_losses[e - 1], epochs))


TYPICAL = ([1.8, 0.9, 0.6, 0.45, 0.36], [0.5, 0.6, 0.7, 0.8, 0.9])  # validation losses, accuracies
OVERFITTING = ([1.5, 1.2, 1.3, 1.6, 2.0], [0.5, 0.6, 0.62, 0.6, 0.58])  # a rising validation loss, top right
STUCK = ([2.3, 2.3, 2.3, 2.3, 2.3], [0.1, 0.1, 0.11, 0.1, 0.1])  # chance accuracy, along the bottom
