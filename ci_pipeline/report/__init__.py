"""The backbone team's report card: a static site in English, Hebrew and Arabic, built from the
stored indicators and open alerts after every ``process`` run (and by ``ci-pipeline report``).

The modules: ``content`` (what each page says: pure), ``i18n`` (words, direction, numbers and
dates per locale), ``charts`` (SVG charts drawn at build time), ``templates`` and ``site``
(the pages), ``kept`` (the last build's pages, reused where their inputs did not change),
``cells`` (the stored cells it reads, kept slice by slice), ``package`` (the figures as a
Frictionless Data Package), ``build`` (all of it, from the store:
:func:`~ci_pipeline.report.build.build_report`). Nothing is imported here but the names of
the folders kept beside the site (:func:`drawn_folder` and the like), so the alerts can use
``i18n`` without loading the charts.
"""

from pathlib import Path


def drawn_folder(root: Path) -> Path:
    """Where the charts of the last build of the site at ``root`` are kept, for the next build
    to reuse those that did not change (:func:`~ci_pipeline.report.charts.draw`): beside the
    site, not served with it."""
    return root.with_name(root.name + ".charts")


def kept_folder(root: Path) -> Path:
    """Where the pages of the last build of the site at ``root`` are kept, for the next build
    to reuse those whose inputs did not change (:mod:`~ci_pipeline.report.kept`): beside the
    site, not served with it."""
    return root.with_name(root.name + ".pages")


def cells_folder(root: Path) -> Path:
    """Where the stored cells the last build of the site at ``root`` read are kept, slice by
    slice, for the next build to read from the database only the slices recomputed since
    (:mod:`~ci_pipeline.report.cells`): beside the site, not served with it."""
    return root.with_name(root.name + ".cells")


def rows_folder(root: Path) -> Path:
    """Where the Data Package's rows of each measure, as the last build of the site at
    ``root`` wrote them, are kept for the next build to copy where the measure's cells did not
    change (:func:`~ci_pipeline.report.package.write_package`): beside the site, not served
    with it."""
    return root.with_name(root.name + ".rows")
