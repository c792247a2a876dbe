"""The district scenario player: a pure planner (seed, scale, simulated clock → actions) and a thin
executor sending them to the services' public gRPC APIs (docs/services/simulator.md)."""
