"""Errors a user can act on.

The CLI prints these as one paragraph and exits non-zero; anything else is a bug and shows a
traceback only with `--debug`.
"""


class ChurnError(Exception):
    """A problem with the user's input, configuration or environment."""


class DataContractError(ChurnError):
    """Input data breaks the contract of SPEC.md (table, column, problem, example rows)."""


class ConfigError(ChurnError):
    """A configuration file or value is invalid."""
