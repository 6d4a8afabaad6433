"""ecgdist: distributed pre-training and post-training of ECG foundation models."""

__version__ = "0.1.0"
