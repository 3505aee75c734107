"""make bench: the registration pipeline under load (see bench/README.md)."""
