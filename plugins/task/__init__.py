"""Built-in tasks: ``image_mlp``, ``conv`` and ``resnet`` image classifiers, and the byte
language models ``lstm_lm`` and ``transformer_lm``."""
