"""The model layer's own errors, under the project's one root (`features.errors.ChurnError`).

A `ModelError` is a problem with a model or with what it is asked to do (unfitted, unknown
calibration, input it cannot explain); problems with the data or the configuration raise
`DataContractError` and `ConfigError` as everywhere else. The CLI prints any of them as one
paragraph.
"""

from __future__ import annotations

from features.errors import ChurnError


class ModelError(ChurnError):
    """A model cannot do what it was asked, or was asked wrongly (a usage or artifact problem)."""
