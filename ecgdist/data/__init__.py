"""The read side of the shard corpus: datasets, samplers, transforms, the per-record index."""
