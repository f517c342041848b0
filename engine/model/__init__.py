"""The model core: architectures, heads, the layer tree, the checklist, freeze plans, assembly. Knows nothing
of training, run folders, the command line or the demo."""
