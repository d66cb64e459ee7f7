"""What the fault tests share besides fixtures: the files they send, and a database URL another
process can use."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, text


def url_for_another_process(engine: Engine) -> str:
    """``engine``'s URL, with the PostgreSQL schema it works in (a test's own) in it."""
    url = engine.url
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            schema = conn.execute(text("SELECT current_schema()")).scalar_one()
        url = url.update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


STARTER = "braude-college"  # reports starter-students-trained: monthly, broken down by sex
HEADER = "measure_id,geo_code,period,sex,value"


def starter_file(path: Path, *rows: tuple[str, str, str, int]) -> Path:
    """A braude-college file of starter figures: (place, month, sex or blank for the total,
    students)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [HEADER, *(f"starter-students-trained,{g},{p},{s},{v}" for g, p, s, v in rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
