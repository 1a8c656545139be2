"""Built-in features components."""
