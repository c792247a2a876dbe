"""The commerce service's use cases, one module per family."""
