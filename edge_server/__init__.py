"""Edge server: runs encoder layers [L, n) + pooling of a pruned BERT-family model for many device agents."""

from splitbed.omp import bound_openmp_spinning

bound_openmp_spinning()
