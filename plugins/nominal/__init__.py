"""Built-in nominal terms: ``sgd``, ``aggmo``, ``adam``, ``adam_aggmo``."""
