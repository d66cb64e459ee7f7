"""Running the pipeline on one machine (``runner``: a Prefect server, the deployments of
``deployments/prefect.yaml``, the inbox watcher and the intake API) and what operators see of it
(``status``).
"""
