"""The one exception family of mlipflow.

Every error that a user can cause (bad input, a missing file, a failed calculation) is raised as a
subclass of :class:`MlipflowError` with a message that names the offending input and says how to fix
it.  The CLI prints these messages without a traceback unless ``--debug`` is given.
"""

from __future__ import annotations


class MlipflowError(Exception):
    """Base class of every error mlipflow raises on purpose."""


class ConfigError(MlipflowError):
    """A setting, a campaign file or a command-line argument is wrong."""


class StorageError(MlipflowError):
    """The store cannot be reached or holds something unexpected."""


class DataError(MlipflowError):
    """A structure, a frame or a dataset file is malformed or inconsistent."""


class StructureError(MlipflowError):
    """A structure cannot be generated from the given parameters."""


class LabelingError(MlipflowError):
    """A reference calculation failed or produced an unusable label."""


class TrainingError(MlipflowError):
    """Training cannot start or was stopped (e.g. a NaN or diverging loss)."""
