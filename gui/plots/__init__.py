"""Live training plots (pyqtgraph), fed from growing buffers and redrawn by a timer."""
