"""The hub's use cases, one module per family."""
