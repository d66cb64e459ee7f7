"""The backbone team's report card: a static site in English, Hebrew and Arabic, built from the
stored indicators and open alerts after every ``process`` run (and by ``ci-pipeline report``).

The modules: ``content`` (what each page says: pure), ``i18n`` (words, direction, numbers and
dates per locale), ``charts`` (SVG charts drawn at build time), ``templates`` and ``site``
(the pages), ``package`` (the figures as a Frictionless Data Package), ``build`` (all of
it, from the store: :func:`~ci_pipeline.report.build.build_report`). Nothing is imported
here, so the alerts can use ``i18n`` without loading the charts.
"""
