"""Reproducible, offline augmentation and obfuscation of essays (and the inverse: deobfuscation)."""
