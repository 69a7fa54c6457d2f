"""The simulated provider: a shipped feature for dry runs, cost simulation, tests and benchmarks."""

from orchestrator.simulator.server import Simulator, SimulatorThread, build_app, run_forever, serve
from orchestrator.simulator.settings import FaultRule, SimulatorSettings, simulator_settings_from_dict

__all__ = [
    "FaultRule",
    "Simulator",
    "SimulatorSettings",
    "SimulatorThread",
    "build_app",
    "run_forever",
    "serve",
    "simulator_settings_from_dict",
]
