"""Health score, renewal-risk model, explanations and evaluation."""
