"""The safety service: campus and hospital early warning, the one-click alarm and joint response."""
