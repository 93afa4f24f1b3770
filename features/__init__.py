"""Point-in-time feature engineering: raw event tables -> per-account snapshot features."""
