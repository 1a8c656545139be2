"""Built-in metrics loggers (entry-point group ``lofw.loggers``, see :mod:`lofw.loggers`)."""
