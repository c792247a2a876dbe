"""The kitchen service's use cases, one module per family."""
