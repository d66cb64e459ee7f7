"""Running the pipeline on one machine (``runner``: a Prefect server, guarded by the secret of
``auth``, the deployments that ``deployments`` reads from ``deployments/prefect.yaml``, the
inbox watcher and the intake API; ``stuck``: runs left behind by a process that is gone,
finished so their slots are released; ``reconcile``: received submissions nobody is deciding,
ingested) and what operators see of it (``status``).
"""
