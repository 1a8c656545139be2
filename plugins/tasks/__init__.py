"""Built-in tasks: ``image_mlp`` and ``conv`` image classifiers."""
