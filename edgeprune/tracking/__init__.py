"""Experiment trackers a bench is logged to beside its results file: MLflow (``bench --mlflow``)."""
