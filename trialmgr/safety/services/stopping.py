"""Stopping rules (DOMAIN.md defaults for a pilot; each trial may change them): typed rules
with parameters, evaluated in the transaction of every adverse-event or lab write. When one
fires, dosing is paused trial-wide at once (the enrolment gate refuses dosing), the firing
is audited with the records that triggered it, safety monitors and consortium leads are
notified, and the pause shows on every dashboard until a safety monitor resumes with a
signed decision. A rule that fires while the trial is already paused adds its reason to
the open pause. The same records never fire the same rule twice.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from trialmgr.audit import services as audit
from trialmgr.auth.models import SystemActor
from trialmgr.db import lock_rows
from trialmgr.enrollment.models import Trial
from trialmgr.enrollment.policies import require_manager
from trialmgr.enrollment.services.oversight import pause_trial
from trialmgr.errors import Conflict, NotFound
from trialmgr.extensions import db
from trialmgr.safety.models import (
    STOPPING_KINDS,
    SUSPECTED,
    AdverseEvent,
    LabResult,
    StoppingRule,
    StoppingRuleFiring,
)
from trialmgr.safety.services.notify import SAFETY_AUDIENCE, notify

DEFAULT_RULES: tuple[tuple[str, dict[str, Any], str], ...] = (
    ("death_related", {}, "A death possibly related to the product"),
    ("grade4_related", {"min_grade": 4}, "A grade 4 adverse event possibly related"),
    (
        "same_soc_grade3",
        {"count": 2, "min_grade": 3},
        "Two or more grade 3 related adverse events of the same SOC in one cohort",
    ),
    ("hys_law", {}, "A Hy's law case (ALT or AST > 3x ULN with bilirubin > 2x ULN)"),
    (
        "tma_aesi",
        {"min_grade": 3},
        "A thrombotic microangiopathy / complement-activation AESI of grade 3 or more",
    ),
)
RULE_ACTOR: Any = SystemActor(email="system:stopping-rules")
# The rules an adverse-event write can fire (a Hy's law case is made by lab results).
EVENT_KINDS = frozenset(kind for kind in STOPPING_KINDS if kind != "hys_law")
# Rule parameters below this grade are not accepted: the rules look at severe events only,
# so writes of milder events (and labs that are not a Hy's law case) skip the evaluation.
SEVERE = 3


def seed_rules(trial_id: int) -> None:
    exists = db.session.execute(
        sa.select(StoppingRule.id).where(StoppingRule.trial_id == trial_id).limit(1)
    ).first()
    if exists:
        return
    for kind, params, description in DEFAULT_RULES:
        db.session.add(
            StoppingRule(trial_id=trial_id, kind=kind, params=params, description=description)
        )


def rules_of(trial_id: int) -> list[StoppingRule]:
    return list(
        db.session.execute(
            sa.select(StoppingRule)
            .where(StoppingRule.trial_id == trial_id)
            .order_by(StoppingRule.id)
        ).scalars()
    )


def ensure_rules(trial_id: int) -> list[StoppingRule]:
    """The trial's rules, seeded with the defaults the first time they are asked for."""
    rules = rules_of(trial_id)
    if not rules:
        with audit.audited(RULE_ACTOR, action="stopping_rule.seed"):
            seed_rules(trial_id)
        rules = rules_of(trial_id)
    return rules


# --- what each kind of rule looks for -------------------------------------------------


def _severe_events(trial_id: int) -> list[Any]:
    """The trial's events of grade 3 or more: every default rule looks only at those, a
    small set even in a trial with years of follow-up (index on trial, grade)."""
    return list(
        db.session.execute(
            sa.select(
                AdverseEvent.id,
                AdverseEvent.grade,
                AdverseEvent.causality,
                AdverseEvent.cohort_id,
                AdverseEvent.soc,
                AdverseEvent.aesi,
                AdverseEvent.aesi_category,
            )
            .where(AdverseEvent.trial_id == trial_id, AdverseEvent.grade >= SEVERE)
            .order_by(AdverseEvent.id)
        )
    )


def _hys_law_labs(trial_id: int) -> list[int]:
    return list(
        db.session.execute(
            sa.select(LabResult.id).where(LabResult.trial_id == trial_id, LabResult.hys_law)
        ).scalars()
    )


def _triggers(rule: StoppingRule, events: list[Any], labs: list[int]) -> list[list[str]]:
    """Each group of records that makes the rule fire (a group fires once), among the
    trial's severe events and Hy's law labs."""
    p = rule.params or {}
    if rule.kind == "hys_law":
        return [[f"lab:{lab_id}"] for lab_id in labs]
    if rule.kind == "death_related":
        return [[f"ae:{e.id}"] for e in events if e.grade == 5 and e.causality in SUSPECTED]
    if rule.kind == "grade4_related":
        minimum = int(p.get("min_grade", 4))
        return [
            [f"ae:{e.id}"] for e in events if minimum <= e.grade < 5 and e.causality in SUSPECTED
        ]
    if rule.kind == "tma_aesi":
        minimum = int(p.get("min_grade", 3))
        return [
            [f"ae:{e.id}"]
            for e in events
            if e.aesi and e.aesi_category == "tma_complement" and e.grade >= minimum
        ]
    if rule.kind == "same_soc_grade3":
        minimum, count = int(p.get("min_grade", 3)), int(p.get("count", 2))
        groups: dict[tuple[int, str], list[str]] = defaultdict(list)
        for e in events:
            if e.grade >= minimum and e.causality in SUSPECTED:
                groups[(e.cohort_id, e.soc.strip().casefold())].append(f"ae:{e.id}")
        return [ids for ids in groups.values() if len(ids) >= count]
    return []


def _already_fired(trial_id: int) -> dict[int, set[str]]:
    """The records each rule of the trial has fired on, by rule id."""
    fired: dict[int, set[str]] = defaultdict(set)
    for rule_id, triggers in db.session.execute(
        sa.select(StoppingRuleFiring.rule_id, StoppingRuleFiring.triggers).where(
            StoppingRuleFiring.trial_id == trial_id
        )
    ):
        fired[rule_id].update(triggers)
    return fired


def evaluate(
    trial: Trial, now: datetime, kinds: frozenset[str] | None = None
) -> list[StoppingRuleFiring]:
    """Evaluate every active rule of the trial (of the given kinds: those the write can
    fire); fire those with new triggering records. The trial row is locked first, so that
    parallel writes that each fire a rule are serialised: the first pauses, the others add
    their reasons to the open pause.

    The records are read once for all rules: the trial's severe events (if an event rule
    is evaluated), its Hy's law labs (if that rule is), and what the rules already fired on."""
    lock_rows(db.session, Trial, trial.id)
    rules = [
        rule
        for rule in ensure_rules(trial.id)
        if rule.active and (kinds is None or rule.kind in kinds)
    ]
    if not rules:
        return []
    evaluated = {rule.kind for rule in rules}
    events = _severe_events(trial.id) if evaluated - {"hys_law"} else []
    labs = _hys_law_labs(trial.id) if "hys_law" in evaluated else []
    already = _already_fired(trial.id)
    fired = []
    for rule in rules:
        seen = already[rule.id]
        for group in _triggers(rule, events, labs):
            if set(group) <= seen:
                continue
            fired.append(_fire(trial, rule, group, now))
            seen.update(group)
    return fired


def _fire(
    trial: Trial, rule: StoppingRule, triggers: list[str], now: datetime
) -> StoppingRuleFiring:
    records = ", ".join(
        t.replace("ae:", "adverse event ").replace("lab:", "lab result ") for t in triggers
    )
    reason = f"Stopping rule fired: {rule.description} ({records})."
    pause = pause_trial(RULE_ACTOR, trial, reason, now, source=f"rule:{rule.kind}")
    with audit.audited(RULE_ACTOR, reason=reason, action="stopping_rule.fire"):
        firing = StoppingRuleFiring(
            rule_id=rule.id,
            trial_id=trial.id,
            fired_at=now,
            triggers=triggers,
            reason=reason,
            pause_id=pause.id,
        )
        db.session.add(firing)
    notify(
        SAFETY_AUDIENCE,
        "stopping_rule",
        f"{trial.code}: dosing paused by a stopping rule",
        reason,
        f"/trials/{trial.id}",
        now,
    )
    return firing


# --- managing the rules ---------------------------------------------------------------


def get_rule(rule_id: int) -> StoppingRule:
    rule = db.session.get(StoppingRule, rule_id)
    if rule is None:
        raise NotFound(f"No stopping rule {rule_id}.")
    return rule


def save_rule(actor: Any, trial: Trial, data: dict[str, Any]) -> StoppingRule:
    """Set a rule of the trial (one per kind): its parameters, active or not, description."""
    require_manager(actor)
    if trial.status == "ended":
        raise Conflict("The trial has ended.", title="Trial ended")
    ensure_rules(trial.id)
    rule = next((r for r in rules_of(trial.id) if r.kind == data["kind"]), None)
    with audit.audited(actor, reason=data.get("reason"), action="stopping_rule.save"):
        if rule is None:
            rule = StoppingRule(trial_id=trial.id, kind=data["kind"], description=data["kind"])
            db.session.add(rule)
        for field in ("params", "active", "description"):
            if field in data:
                setattr(rule, field, data[field])
    return rule


def firings_of(trial: Trial) -> list[StoppingRuleFiring]:
    return list(
        db.session.execute(
            sa.select(StoppingRuleFiring)
            .where(StoppingRuleFiring.trial_id == trial.id)
            .order_by(StoppingRuleFiring.fired_at.desc())
        ).scalars()
    )
