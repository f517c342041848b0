"""Export: a run's model as a bundle that predicts the same outside Thaw, verified when it is written."""
