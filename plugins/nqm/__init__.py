"""The noisy quadratic model's components: the ``nqm`` task and the
``dense_preconditioner`` optimizer (paper section 4)."""
