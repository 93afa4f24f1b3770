"""Every feature family, in table order; importing this package fills the feature registry."""

from features.families import account, logins, support, training, usage

FAMILIES = (account, logins, usage, support, training)
"""Each module has SOURCE (the table it reads) and build(run, ctx) -> feature column names."""
