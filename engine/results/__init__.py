"""What a trained model does: predictions, metrics and saliency."""
