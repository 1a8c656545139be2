"""Built-in datasets: ``digits`` (scikit-learn), the tfds image datasets (incl. ``imagenet32``),
and the byte corpora ``lm1b`` (tfds) and ``python_source`` (the local standard library)."""
