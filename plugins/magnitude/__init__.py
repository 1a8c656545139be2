"""Built-in magnitude controllers: ``exp``, ``constant``."""
