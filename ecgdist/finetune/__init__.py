"""Post-training on a benchmark: one fine-tune job (job), the sweep, the results table, plots, predict."""
