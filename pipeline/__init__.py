"""Churn pipeline: stages, configuration, tracking and the `churn` command line."""

__version__ = "0.1.0"
