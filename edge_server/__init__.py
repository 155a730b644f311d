"""Edge server: runs encoder layers [L, n) + pooling of a pruned BERT-family model for many device agents."""
