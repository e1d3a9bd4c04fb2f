"""From a trained Keras model to a pruned one: tfmot's magnitude pruning with fine-tuning, measured per layer."""
