"""ci-pipeline: shared measurement for Collective Impact initiatives.

The data flows one way: receive → read → validate → store → aggregate → detect → alert, with
serve and events beside it. Each stage is a sub-package named after it; `ci_pipeline.flows`
wires them into Prefect flows. README.md's *Architecture* section has the tree.
"""

__version__ = "0.1.0"
