"""Post-training on PTB-XL: one fine-tune job (job), its metrics, the results table, plots, predict."""
