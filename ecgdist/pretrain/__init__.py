"""Pre-training with DeepSpeed ZeRO: entry point (main), loop (engine), checkpoints, export.

``python -m ecgdist.pretrain CONFIG [key=value ...]`` runs one rank (``main.py``).
"""
