"""After training: a run's results (figures, confusion matrix, galleries, an image with its Grad-CAM), trying
its model on new images, and the project's runs side by side."""
