"""Benchmark-only data sources for `bench/quality.py`, never imported by the product.

`history` cuts a generated event history at a date and looks up the true outcome of the term each
account had running then; `foreign` is an independent simulator with its own generating process
(our proxy for data we have never seen); `public` loads public churn tables that install from a
package registry.
"""
