"""Realistic synthetic SaaS customer history in the input contract, with the ground truth behind it.

`generate(out_dir, n_accounts, seed)` is what `churn generate` calls; see data/README.md for the
model of the world it simulates.
"""

from pipeline.synthetic.generate import GenerateSummary, generate

__all__ = ["GenerateSummary", "generate"]
