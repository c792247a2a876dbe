"""The govservice service's use cases, one module per family."""
