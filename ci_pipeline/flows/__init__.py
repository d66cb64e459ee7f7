"""The Prefect flows: wiring only. Each flow calls the stages' functions as tasks; no polars
expressions and no SQL live here. ``runtime`` holds what they share: the one retry policy, the
context a flow works with, tagging and in-process runs.
"""
