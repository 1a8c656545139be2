"""Built-in preconditioners: ``rms``, ``identity``, and the stabilisers ``centered_rms``, ``clipped_rms``, ``tensor_limited_rms``, ``bias_corrected_rms``."""
