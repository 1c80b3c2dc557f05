"""Build helpers: artifact size checks for `make build`."""
