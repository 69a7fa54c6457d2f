"""The decision policy: what a request is worth on each tier, and which tier to try.

Estimators, prompt and ARC features, the learned and online models, the value
ranking, calibration and A/B arm assignment. Sans-I/O: nothing here awaits, opens a
socket or imports the actor runtime, so the offline lab, `whatif` and `forecast` use
the very code the router runs.
"""
