"""The offline routing lab: outcome tables, their evaluation and metrics, and tables
built from the project's own telemetry. Used by `orchestrator routing`; the engine
never imports it.
"""
