"""Built-in networks: ``mlp``, the per-parameter MLP of STAR and the blackbox."""
