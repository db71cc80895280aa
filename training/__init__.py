"""Datasets, the training loop, TensorBoard logging and export for serving."""
