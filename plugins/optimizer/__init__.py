"""Built-in whole optimizers (kind ``optimizer``): ``dense_preconditioner``, the NQM's dense P (paper section 4)."""
