"""One module per paper; each registers its figures on import."""
