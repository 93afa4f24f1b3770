"""`python -m pipeline` is the same as the `churn` command."""

from pipeline.cli import main

main()
