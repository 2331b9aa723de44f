"""Hugging Face plumbing the LM-based families share: loading weights and tokenizers from a local path or a hub id
(``loading``), token batches (``batches``), resumable checkpoints (``checkpoints``), and training curves,
evaluation and early stopping (``training_log``)."""
