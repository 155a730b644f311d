"""Device agent: runs embeddings + encoder layers [0, L) of a pruned model and streams hidden states."""

from splitbed.omp import bound_openmp_spinning

bound_openmp_spinning()
