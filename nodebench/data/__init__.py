"""Data sets: MNIST fetch/verify/load (`nodebench.data.mnist`) and spiral generators."""
