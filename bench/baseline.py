"""The baseline service for write benchmarks: bare Flask + SQLAlchemy inserting the same
adverse-event row the application writes, with no authentication, validation, audit,
clocks or rules. Served by gunicorn beside the application, on the same database."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime

import sqlalchemy as sa
from flask import Flask, jsonify, request

engine = sa.create_engine(os.environ["DATABASE_URL"], pool_pre_ping=True)
metadata = sa.MetaData()
adverse_event = sa.Table("adverse_event", metadata, autoload_with=engine)
subject = sa.Table("subject", metadata, autoload_with=engine)
app = Flask(__name__)


@app.post("/adverse-events")
def insert_adverse_event():  # type: ignore[no-untyped-def]
    body = request.get_json()
    now = datetime.now(UTC)
    with engine.begin() as conn:
        row = conn.execute(
            sa.select(
                subject.c.id, subject.c.trial_id, subject.c.site_id, subject.c.cohort_id
            ).where(subject.c.code == body["subject_code"])
        ).one()
        aware = datetime.fromisoformat(body["site_awareness_at"])
        new_id = conn.execute(
            sa.insert(adverse_event).values(
                trial_id=row.trial_id,
                subject_id=row.id,
                site_id=row.site_id,
                cohort_id=row.cohort_id,
                version=1,
                term=body["term"],
                soc=body["soc"],
                onset_date=date.fromisoformat(body["onset_date"]),
                grade=body["grade"],
                seriousness_criteria=body.get("seriousness_criteria", []),
                serious=bool(body.get("seriousness_criteria")),
                causality=body["causality"],
                suspected=body["causality"] in ("possible", "probable", "definite"),
                expected=body["expected"],
                susar=False,
                aesi=False,
                site_awareness_at=aware
                if engine.dialect.name != "sqlite"
                else aware.replace(tzinfo=None),
                sponsor_awareness_at=aware
                if engine.dialect.name != "sqlite"
                else aware.replace(tzinfo=None),
                created_at=now if engine.dialect.name != "sqlite" else now.replace(tzinfo=None),
                updated_at=now if engine.dialect.name != "sqlite" else now.replace(tzinfo=None),
            )
        ).inserted_primary_key
    return jsonify({"id": new_id[0]}), 201
