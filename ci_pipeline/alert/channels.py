"""Where alert messages go: the apprise sender, the local-file channel (``cifile://``, a small
apprise plugin registered here, so the demo works offline), and channel URLs made safe to show.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import apprise
from apprise.decorators import notify

from ci_pipeline.clock import utcnow

FILE_SCHEME = "cifile"

#: Sends one message to one channel; True when the channel accepted it.
Sender = Callable[[str, str, str], bool]


@notify(on=FILE_SCHEME, name="ci-pipeline local file")
def _write_file(
    body: str, title: str, notify_type: str, meta: dict[str, Any], *args: Any, **kwargs: Any
) -> bool:
    """``cifile:///abs/path.log``: append the message to a local file."""
    # apprise splits the path into a host and the rest, percent-encoded (see file_channel).
    path = Path(unquote("/" + str(meta.get("host") or "") + str(meta.get("fullpath") or "")))
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(f"=== {utcnow().isoformat(timespec='seconds')} {title}\n{body}\n\n")
    return True


def file_channel(path: Path) -> str:
    """The apprise URL of the local-file channel; the path percent-encoded, so a folder with a
    space, ``#`` or ``?`` in its name is not cut or mangled by URL parsing."""
    return f"{FILE_SCHEME}://{quote(str(path.resolve()))}"


def apprise_sender(url: str, title: str, body: str) -> bool:
    """Deliver through apprise (email, Slack, Teams, a JSON webhook, a local file …)."""
    client = apprise.Apprise()
    if not client.add(url):
        return False
    return bool(client.notify(title=title, body=body))


def redact_channel(url: str) -> str:
    """A channel URL safe to print: credentials and tokens hidden.

    Only a host name (and port) is kept. Many apprise URLs carry a token where a host would be
    (``tgram://BOT_TOKEN/…``, ``slack://TokenA/…``, ``pover://user@token``), so anything
    that does not look like a host name is hidden too.
    """
    scheme, _, rest = url.partition("://")
    if scheme == FILE_SCHEME:
        return url
    netloc = re.split(r"[/?#]", rest, maxsplit=1)[0]
    host = netloc.rpartition("@")[2]
    return f"{scheme}://{host}/…" if _HOST.fullmatch(host) else f"{scheme}://…"


#: A DNS name with at least one dot, or localhost, with an optional port.
_HOST = re.compile(r"(?:localhost|[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})+)(?::\d{1,5})?")
