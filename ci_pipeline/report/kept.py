"""The pages of the last report card build, kept under the key of what each page's text
depends on, so that a rebuild writes again only the pages whose inputs changed.

A national report card is 2,761 places in three languages, and one partner's file changes the
figures of a few dozen of them; rendering every page again took most of a rebuild (12-17 s of
about 30 at 1M observations). A page's key (:func:`page_key`) covers its content (its cards'
points, paths, alerts and gaps), the pages it links to, its language, the build's date, the
initiative's definitions (names, titles, units: their digest) and the code and libraries that
write it (:func:`code_salt`). Equal keys mean equal text.

A kept page is a hard link to the file a build wrote, so keeping it costs no copy and no disk;
where the folder cannot link (another file system) it copies. Like the charts' cache, it only
saves work: a page it cannot find is rendered, and a folder it cannot write is passed over.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from functools import cache
from pathlib import Path

from ci_pipeline.keeping import code_digest, prune, write_whole

#: The modules whose source shapes a page's text: the report's (templates and words, the
#: page's content, how numbers and dates are written, the charts it inlines), and the model's
#: periods (where a chart places a period) and definitions (a measure's title in a language).
_SOURCES = (
    "report/content.py",
    "report/charts.py",
    "report/i18n.py",
    "report/site.py",
    "report/templates.py",
    "model/periods.py",
    "model/initiative.py",
)


@cache
def code_salt() -> bytes:
    """The source of the modules that write a page, and the versions of the libraries that
    format and draw it (and polars, which writes the numbers of a page's digest of its cells):
    a change to either writes every page again."""
    return code_digest(_SOURCES, ("jinja2", "babel", "vl-convert-python", "markupsafe", "polars"))


# Worked out as this module is imported (with the report's others): the code that runs, not
# what is on disk when a page is kept (a long-lived ``serve`` outlives a deploy).
code_salt()


def page_key(parts: object) -> str:
    """The key of a page whose text is a function of ``parts`` (a value whose ``repr`` holds
    all of them: tuples of strings, numbers and frozen dataclasses) and of the code."""
    return hashlib.sha256(code_salt() + repr(parts).encode()).hexdigest()


#: The kept folder's record of the charts each kept page shows (:meth:`KeptPages.charts_of`).
CHARTS = "charts.json"


class KeptPages:
    """The pages kept in ``folder``, one file per key. :meth:`take` puts a kept page in place,
    :meth:`keep` keeps a page just written, :meth:`prune` drops what this build did not use.

    The folder also records the charts each page shows (by the key of its content, whatever
    its language: :meth:`charts_of`, :meth:`record`), so a build that keeps a page whole need
    not work out its charts to keep them drawn."""

    def __init__(self, folder: Path) -> None:
        self.folder: Path | None = folder
        self.used: set[str] = set()
        self.charts: dict[str, list[str]] = {}
        self._recorded: dict[str, list[str]] = {}
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError:
            self.folder = None  # nothing is kept: every page is rendered
            return
        # A record that is not whole or not of names is no record: its pages are drawn.
        with contextlib.suppress(OSError, ValueError, RecursionError):
            charts = json.loads((folder / CHARTS).read_text(encoding="utf-8"))
            if isinstance(charts, dict):
                self.charts = {
                    k: v
                    for k, v in charts.items()
                    if isinstance(v, list) and all(isinstance(n, str) for n in v)
                }

    def has(self, key: str) -> bool:
        """Whether a page is kept under ``key`` (it may still be gone when taken)."""
        return self.folder is not None and (self.folder / f"{key}.html").exists()

    def charts_of(self, content: str) -> list[str] | None:
        """The charts (their file names) the last build recorded for a page's content, or
        None if it recorded none."""
        return self.charts.get(content)  # lists of names only: __init__ kept no other

    def record(self, content: str, names: list[str]) -> None:
        """Record the charts a page of this build shows (written by :meth:`prune`)."""
        self._recorded[content] = names

    def take(self, key: str, target: Path) -> bool:
        """Put the page kept under ``key`` at ``target``; False when there is none."""
        if self.folder is None:
            return False
        kept = self.folder / f"{key}.html"
        target.unlink(missing_ok=True)  # a link never writes through to an older file
        try:
            _link_or_copy(kept, target)
        except OSError:  # not kept (or pruned by another build meanwhile): rendered instead
            return False
        self.used.add(kept.name)
        return True

    def keep(self, key: str, written: Path) -> None:
        """Keep the page just written at ``written`` under ``key``, whole or not at all."""
        if self.folder is None:
            return
        kept = self.folder / f"{key}.html"
        if write_whole(kept, lambda part: _link_or_copy(written, part)):
            self.used.add(kept.name)

    def prune(self) -> None:
        """Drop every kept page this build did not take or keep: the folder holds the last
        site's pages only."""
        if self.folder is None:
            return
        text = json.dumps(self._recorded)
        write_whole(self.folder / CHARTS, lambda part: part.write_text(text, encoding="utf-8"))
        self.used.add(CHARTS)
        prune(self.folder, self.used)


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except FileNotFoundError:
        raise  # nothing to copy either
    except OSError:  # another file system, or links not allowed: a copy does
        shutil.copyfile(source, target)
