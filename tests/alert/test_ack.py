"""Acknowledgement by link: the signed token, its expiry, the message that carries it, and the
intake API's page and button (GET changes nothing; POST acknowledges that alert, once)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from ci_pipeline import alert, store
from ci_pipeline.alert import ack
from ci_pipeline.config import Settings
from ci_pipeline.model.initiative import Initiative
from ci_pipeline.receive.api import create_app
from ci_pipeline.store import Alert, AlertStatus

KEY = "k" * 43


def test_a_token_names_its_alert_and_nothing_else() -> None:
    token = ack.sign(12, key=KEY)
    assert ack.verify(token, key=KEY, max_age_seconds=60) == 12
    assert ack.sign(13, key=KEY) != token
    with pytest.raises(ack.AckLinkInvalid):
        ack.verify(token, key="another key", max_age_seconds=60)
    # One character changed in the payload or inside the signature breaks it. (Not the very
    # last character: in unpadded base64 its low bits are padding that decoding drops, so
    # 'A'→'B' there can leave the signature's bytes unchanged -- a CI run met exactly that.)
    signature_middle = len(token) - 10
    for i in (0, signature_middle):
        altered = token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1 :]
        with pytest.raises(ack.AckLinkInvalid):
            ack.verify(altered, key=KEY, max_age_seconds=60)


def test_a_token_expires() -> None:
    token = ack.sign(12, key=KEY)
    time.sleep(2.1)  # itsdangerous stamps whole seconds: 2 s old is past a 1 s limit
    with pytest.raises(ack.AckLinkExpired):
        ack.verify(token, key=KEY, max_age_seconds=1)


def test_the_key_is_made_once_and_kept_for_its_owner(settings: Settings) -> None:
    first = ack.ack_key(settings)
    assert ack.ack_key(settings) == first
    assert settings.ack_key_file.stat().st_mode & 0o777 == 0o600


def _alert(engine: Engine, initiative: Initiative, n: int) -> int:
    with store.transaction(engine=engine) as session:
        return store.add_alert(
            Alert(
                initiative_id=initiative.info.id,
                kind="step",
                measure_id="arab-women-lfp",
                geo_code="nahf",
                disaggregation="age_band=total",
                period=f"2025-Q{n}",
                message=f"Arab women's labour-force participation in Nahf fell (#{n})",
                evidence=json.dumps({}),
            ),
            session=session,
        )


def test_each_alert_in_a_message_carries_its_own_link(
    settings: Settings, initiative: Initiative, sqlite_engine: Engine
) -> None:
    ids = [_alert(sqlite_engine, initiative, n) for n in (1, 2)]
    links = alert.link_maker(settings)
    _, body = alert.compose(store.alerts_by_id(ids, engine=sqlite_engine), "backbone", links)
    for i in ids:
        line = next(x for x in body.splitlines() if x.strip().startswith(f"Acknowledge #{i}:"))
        token = line.rsplit("/ack/", 1)[1]
        assert ack.verify(token, key=ack.ack_key(settings), max_age_seconds=60) == i
    assert "ci-pipeline alerts ack" not in body  # no terminal needed
    _, plain = alert.compose(store.alerts_by_id(ids, engine=sqlite_engine), "backbone")
    assert "ci-pipeline alerts ack ID" in plain  # without links: the command


@pytest.fixture
def client(
    settings: Settings, initiative: Initiative, sqlite_engine: Engine
) -> Iterator[TestClient]:
    app = create_app(settings, initiative, engine=sqlite_engine, emitter=lambda _e: None)
    with TestClient(app) as c:
        yield c


def _path(settings: Settings, alert_id: int) -> str:
    return alert.link_maker(settings)(alert_id).split(settings.api_base_url, 1)[1]


def test_the_link_acknowledges_exactly_its_alert_once(
    client: TestClient, settings: Settings, initiative: Initiative, sqlite_engine: Engine
) -> None:
    mine, other = _alert(sqlite_engine, initiative, 1), _alert(sqlite_engine, initiative, 2)
    path = _path(settings, mine)

    def status(i: int) -> str:
        [a] = store.alerts_by_id([i], engine=sqlite_engine)
        return str(a.status)

    shown = client.get(path)  # what a mail scanner does: nothing changes
    assert shown.status_code == 200 and 'id="ack"' in shown.text and "(#1)" in shown.text
    assert status(mine) == AlertStatus.open
    done = client.post(path)
    assert done.status_code == 200 and "Acknowledged." in done.text
    assert (status(mine), status(other)) == (AlertStatus.acknowledged, AlertStatus.open)
    [a] = store.alerts_by_id([mine], engine=sqlite_engine)
    assert a.acknowledged_by == "acknowledgement link"
    again = client.post(path)  # a second press: already, and nothing else changes
    assert "already acknowledged" in again.text and 'id="ack"' not in again.text
    assert client.get(path).text.count('id="ack"') == 0


def test_the_page_speaks_the_reader_s_language(
    client: TestClient, settings: Settings, initiative: Initiative, sqlite_engine: Engine
) -> None:
    path = _path(settings, _alert(sqlite_engine, initiative, 1))
    he = client.get(path, params={"lang": "he"})
    assert '<html lang="he" dir="rtl">' in he.text and "אישור" in he.text
    ar = client.post(path, params={"lang": "ar"})
    assert '<html lang="ar" dir="rtl">' in ar.text and "تم التأكيد" in ar.text
    assert client.get(path, params={"lang": "fr"}).status_code == 422


def test_an_altered_or_expired_link_acknowledges_nothing(
    client: TestClient, settings: Settings, initiative: Initiative, sqlite_engine: Engine
) -> None:
    mine = _alert(sqlite_engine, initiative, 1)
    path = _path(settings, mine)
    assert client.post(path[:-2] + "xx").status_code == 403
    # The same link on an API whose links last one second, two seconds on.
    brief = settings.model_copy(update={"ack_link_days": 1 / 86400})
    app = create_app(brief, initiative, engine=sqlite_engine, emitter=lambda _e: None)
    time.sleep(2.1)
    with TestClient(app) as late:
        gone = late.post(path)
    assert gone.status_code == 410 and "expired" in gone.text
    [a] = store.alerts_by_id([mine], engine=sqlite_engine)
    assert a.status == AlertStatus.open


def test_the_route_needs_no_partner_token() -> None:
    """The signed link is the credential: the route is outside /v1's partner auth."""
    from ci_pipeline.receive.api.ack import router

    assert not router.dependencies
