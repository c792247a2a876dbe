"""python -m services.simulator: the same command as `cityhub simulate` (settings from SIMULATOR_*)."""

from services.cli.simulate_commands import simulate

if __name__ == "__main__":
    simulate(prog_name="python -m services.simulator")
