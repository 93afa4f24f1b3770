"""Every feature family, in table order; importing this package fills the feature registry."""

from features.families import account, invoices, logins, support, surveys, touchpoints, training, usage

FAMILIES = (account, logins, usage, support, training, invoices, touchpoints, surveys)
"""Each module has SOURCE (the table it reads) and build(run, ctx) -> feature column names."""
