"""lofw's command line."""
