"""The read side of the shard corpus: datasets, samplers, transforms, PTB-XL tasks."""
