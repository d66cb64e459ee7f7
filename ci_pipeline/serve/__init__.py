"""Running the pipeline on one machine (``runner``: a Prefect server, guarded by the secret of
``auth``, the deployments that ``deployments`` reads from ``deployments/prefect.yaml``, the
inbox watcher and the intake API) and what operators see of it (``status``).
"""
