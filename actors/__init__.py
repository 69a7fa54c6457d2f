"""The engine: actor runtime, messages and codec, router, providers, ledger, cache, telemetry.

Nothing here imports the `orchestrator` package (the face) or `tools`.
"""
