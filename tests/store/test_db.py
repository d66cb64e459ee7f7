"""The store's database plumbing: the cross-process write lock of :func:`store.locked_transaction`."""

from __future__ import annotations

import threading

from sqlalchemy import Engine, text

from ci_pipeline import store


def _counter(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE lock_probe (n INTEGER NOT NULL)"))
        conn.execute(text("INSERT INTO lock_probe (n) VALUES (0)"))


def test_a_locked_transaction_waits_for_the_one_holding_the_lock(engine: Engine) -> None:
    """Two read-then-write units of work on one counter, the first paused inside its lock while
    the second starts: the second reads only after the first committed, so both increments
    count (0 → 1 → 2). Without the lock the second would read 0 as well."""
    _counter(engine)
    inside, release, second_read = threading.Event(), threading.Event(), []

    def first() -> None:
        with store.locked_transaction("probe", engine=engine) as session:
            n = session.execute(text("SELECT n FROM lock_probe")).scalar_one()
            inside.set()
            release.wait(10)
            session.execute(text("UPDATE lock_probe SET n = :n"), {"n": n + 1})

    def second() -> None:
        with store.locked_transaction("probe", engine=engine) as session:
            n = session.execute(text("SELECT n FROM lock_probe")).scalar_one()
            second_read.append(n)
            session.execute(text("UPDATE lock_probe SET n = :n"), {"n": n + 1})

    a = threading.Thread(target=first)
    a.start()
    assert inside.wait(10)
    b = threading.Thread(target=second)
    b.start()
    b.join(0.5)  # it must still be waiting: the first holds the lock
    assert b.is_alive() and second_read == []
    release.set()
    a.join(10)
    b.join(10)
    assert second_read == [1]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT n FROM lock_probe")).scalar_one() == 2


def test_a_failed_locked_transaction_rolls_back_and_frees_the_lock(engine: Engine) -> None:
    _counter(engine)
    try:
        with store.locked_transaction("probe", engine=engine) as session:
            session.execute(text("UPDATE lock_probe SET n = 5"))
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    with store.locked_transaction("probe", engine=engine) as session:  # not held any more
        assert session.execute(text("SELECT n FROM lock_probe")).scalar_one() == 0
