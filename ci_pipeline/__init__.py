"""ci-pipeline: shared measurement for Collective Impact initiatives.

The data flows one way: read → validate → store → aggregate → detect → alert. Each stage is a
module of this package named after it; `flows/` wires them into Prefect flows.
"""

__version__ = "0.1.0"
