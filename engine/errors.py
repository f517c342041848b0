"""The engine's own exceptions: each says what is wrong and what to do, so callers can show it as is."""


class ThawError(Exception):
    """Base of every error the engine reports to a person (exit status 2 on the command line)."""


class ProjectError(ThawError):
    """A project file or setting is invalid; `key` names the setting (e.g. ``train.lr``). A `warning` does not
    stop a run: the run does something other than the setting says (e.g. a larger input size) and says so."""

    def __init__(self, key: str, problem: str, *, warning: bool = False):
        self.key = key
        self.problem = problem
        self.warning = warning
        super().__init__(f"{key}: {problem}" if key else problem)


class DataError(ThawError):
    """The images or labels cannot be used for training."""


class WeightsError(ThawError):
    """A weights file is missing, unsafe, or does not fit the architecture."""


class CheckpointError(ThawError):
    """A run's checkpoint is missing, damaged, or does not fit the run it is resumed into."""


class RunError(ThawError):
    """A run folder is missing, holds no trained model yet, or its files do not fit together."""
