"""Built-in nominal terms, networks, preconditioners and magnitudes."""
