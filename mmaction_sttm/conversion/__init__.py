"""Offline tools' library code: run once before training (e.g. converting
ImageNet checkpoints), never imported by the models at run time."""
