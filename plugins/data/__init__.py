"""Built-in datasets: ``digits`` (scikit-learn) and the tfds image datasets."""
