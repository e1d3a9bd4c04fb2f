"""From a trained model to the sparsity worth shipping: prune, export and bench at each target, then choose."""
