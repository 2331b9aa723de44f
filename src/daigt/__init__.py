"""DAIGT ensemble: shared folds, pluggable model families, OOF stacking for LLM-text detection."""

__version__ = "0.1.0"
