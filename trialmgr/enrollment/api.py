"""/api/v1/trials, /screenings, /subjects, /visits."""

from __future__ import annotations

from typing import Any

from trialmgr.auth.models import SAFETY_MONITOR
from trialmgr.auth.policies import (
    ANY_ROLE,
    MANAGERS,
    SCREENING_READERS,
    SITE_WORK,
    WORKLIST_READERS,
    current_actor,
    roles,
)
from trialmgr.db import paginate, utcnow
from trialmgr.enrollment.schemas import (
    AmendmentIn,
    AmendmentOut,
    CohortIn,
    CohortOut,
    CohortPatch,
    ConsentIn,
    ConsentOut,
    ConsentSiteApprovalIn,
    ConsentSiteApprovalOut,
    ConsentVersionIn,
    ConsentVersionOut,
    CriterionIn,
    CriterionOut,
    CriterionPatch,
    DeviationOut,
    DosingIn,
    DosingOut,
    EndIn,
    EnrolIn,
    PauseIn,
    PauseOut,
    ReadinessOut,
    ReadinessQuery,
    ReinstateIn,
    RemovalIn,
    ResumeIn,
    SafetyReviewIn,
    SafetyReviewOut,
    ScreeningIn,
    ScreeningOut,
    ScreeningPatch,
    ScreeningQuery,
    SubjectOut,
    SubjectQuery,
    TrialIn,
    TrialOut,
    TrialPatch,
    TrialQuery,
    VisitDefinitionIn,
    VisitDefinitionOut,
    VisitDefinitionPatch,
    VisitDueQuery,
    VisitOut,
    VisitPatch,
    WithdrawalIn,
)
from trialmgr.enrollment.services import amendments as amendments_service
from trialmgr.enrollment.services import consent as consent_service
from trialmgr.enrollment.services import dosing as dosing_service
from trialmgr.enrollment.services import oversight as oversight_service
from trialmgr.enrollment.services import screening as screening_service
from trialmgr.enrollment.services import subjects as subjects_service
from trialmgr.enrollment.services import trials as trials_service
from trialmgr.enrollment.services import visits as visits_service
from trialmgr.extensions import ApiBlueprint, db

blp = ApiBlueprint(
    "enrollment_api", __name__, url_prefix="/api/v1", description="Trials and subjects"
)


# --- trials ------------------------------------------------------------------------


@blp.route("/trials", methods=["GET"])
@roles(*ANY_ROLE)
@blp.arguments(TrialQuery, location="query")
@blp.response(200, TrialOut(many=True))
@blp.paginate()
def list_trials(filters: dict[str, Any], pagination_parameters: Any) -> Any:
    return paginate(db.session, trials_service.trial_query(filters), pagination_parameters)


@blp.route("/trials", methods=["POST"])
@roles(*MANAGERS)
@blp.arguments(TrialIn)
@blp.response(201, TrialOut)
def create_trial(data: dict[str, Any]) -> Any:
    return trials_service.create_trial(current_actor(), data)


@blp.route("/trials/<int:trial_id>", methods=["GET"])
@roles(*ANY_ROLE)
@blp.response(200, TrialOut)
def get_trial(trial_id: int) -> Any:
    return trials_service.get_trial(trial_id)


@blp.route("/trials/<int:trial_id>", methods=["PATCH"])
@roles(*MANAGERS)
@blp.arguments(TrialPatch)
@blp.response(200, TrialOut)
def update_trial(data: dict[str, Any], trial_id: int) -> Any:
    """Edit, open or close a trial (reason required); pausing has its own endpoints."""
    return trials_service.update_trial(current_actor(), trials_service.get_trial(trial_id), data)


@blp.route("/trials/<int:trial_id>/cohorts", methods=["POST"])
@roles(*MANAGERS)
@blp.arguments(CohortIn)
@blp.response(201, CohortOut)
def add_cohort(data: dict[str, Any], trial_id: int) -> Any:
    return trials_service.add_cohort(current_actor(), trials_service.get_trial(trial_id), data)


@blp.route("/trials/<int:trial_id>/eligibility-criteria", methods=["POST"])
@roles(*MANAGERS)
@blp.arguments(CriterionIn)
@blp.response(201, CriterionOut)
def add_criterion(data: dict[str, Any], trial_id: int) -> Any:
    return trials_service.add_criterion(current_actor(), trials_service.get_trial(trial_id), data)


@blp.route("/trials/<int:trial_id>/consent-versions", methods=["POST"])
@roles(*MANAGERS)
@blp.arguments(ConsentVersionIn)
@blp.response(201, ConsentVersionOut)
def add_consent_version(data: dict[str, Any], trial_id: int) -> Any:
    """With `reconsent_required`, active subjects on older versions become due for re-consent."""
    return consent_service.add_consent_version(
        current_actor(), trials_service.get_trial(trial_id), data, utcnow()
    )


@blp.route("/consent-versions/<int:version_id>/site-approvals", methods=["POST"])
@roles(*MANAGERS)
@blp.arguments(ConsentSiteApprovalIn)
@blp.response(201, ConsentSiteApprovalOut)
def add_consent_site_approval(data: dict[str, Any], version_id: int) -> Any:
    """A site's ethics approval of a consent version: the site uses it from that date."""
    version = consent_service.get_consent_version(version_id)
    return consent_service.add_site_approval(current_actor(), version, data, utcnow())


@blp.route("/trials/<int:trial_id>/visit-definitions", methods=["POST"])
@roles(*MANAGERS)
@blp.arguments(VisitDefinitionIn)
@blp.response(201, VisitDefinitionOut)
def add_visit_definition(data: dict[str, Any], trial_id: int) -> Any:
    return trials_service.add_visit_definition(
        current_actor(), trials_service.get_trial(trial_id), data
    )


@blp.route("/trials/<int:trial_id>/safety-reviews", methods=["GET"])
@roles(*ANY_ROLE)
@blp.response(200, SafetyReviewOut(many=True))
def list_safety_reviews(trial_id: int) -> Any:
    return oversight_service.reviews_of(trials_service.get_trial(trial_id))


@blp.route("/trials/<int:trial_id>/safety-reviews", methods=["POST"])
@roles(SAFETY_MONITOR)
@blp.arguments(SafetyReviewIn)
@blp.response(201, SafetyReviewOut)
def record_safety_review(data: dict[str, Any], trial_id: int) -> Any:
    """DSMB/SRC decision on a cohort, e-signed (password re-entry)."""
    return oversight_service.record_safety_review(
        current_actor(), trials_service.get_trial(trial_id), data, utcnow()
    )


@blp.route("/trials/<int:trial_id>/pauses", methods=["GET"])
@roles(*ANY_ROLE)
@blp.response(200, PauseOut(many=True))
def list_pauses(trial_id: int) -> Any:
    return oversight_service.pauses_of(trials_service.get_trial(trial_id))


@blp.route("/trials/<int:trial_id>/pause", methods=["POST"])
@roles(SAFETY_MONITOR)
@blp.arguments(PauseIn)
@blp.response(200, TrialOut)
def pause_trial(data: dict[str, Any], trial_id: int) -> Any:
    trial = trials_service.get_trial(trial_id)
    oversight_service.pause_trial(current_actor(), trial, data["reason"], utcnow())
    return trial


@blp.route("/trials/<int:trial_id>/resume", methods=["POST"])
@roles(SAFETY_MONITOR)
@blp.arguments(ResumeIn)
@blp.response(200, TrialOut)
def resume_trial(data: dict[str, Any], trial_id: int) -> Any:
    """Only a safety monitor resumes, signing with their password and giving a reason."""
    trial = trials_service.get_trial(trial_id)
    return oversight_service.resume_trial(
        current_actor(), trial, data["reason"], data["password"], utcnow()
    )


@blp.route("/trials/<int:trial_id>/amendments", methods=["GET"])
@roles(*ANY_ROLE)
@blp.response(200, AmendmentOut(many=True))
def list_amendments(trial_id: int) -> Any:
    return amendments_service.amendments_of(trials_service.get_trial(trial_id))


@blp.route("/trials/<int:trial_id>/amendments", methods=["POST"])
@roles(*MANAGERS)
@blp.arguments(AmendmentIn)
@blp.response(201, AmendmentOut)
def record_amendment(data: dict[str, Any], trial_id: int) -> Any:
    """A protocol amendment (version, effective date, reason, changes): after opening the
    design changes only this way; future visits of subjects in follow-up are recomputed."""
    trial = trials_service.get_trial(trial_id)
    return amendments_service.record_amendment(current_actor(), trial, data, utcnow())


@blp.route("/trials/<int:trial_id>/escalation-readiness", methods=["GET"])
@roles(*ANY_ROLE)
@blp.arguments(ReadinessQuery, location="query")
@blp.response(200, ReadinessOut)
def escalation_readiness(args: dict[str, Any], trial_id: int) -> Any:
    """What the safety-review form shows for a cohort and what blocks `escalate`."""
    trial = trials_service.get_trial(trial_id)
    cohort = trials_service.get_cohort(trial, args["cohort_id"])
    return dosing_service.escalation_readiness(trial, cohort, utcnow())


def _design_routes(kind: str, path: str, patch_schema: Any, out_schema: Any) -> None:
    """PATCH and DELETE of a design item, while its trial is in setup."""

    @blp.route(f"/{path}/<int:item_id>", methods=["PATCH"], endpoint=f"update_{kind}")
    @roles(*MANAGERS)
    @blp.arguments(patch_schema)
    @blp.response(200, out_schema)
    def update(data: dict[str, Any], item_id: int) -> Any:
        item = trials_service.get_design_item(kind, item_id)
        return trials_service.update_design_item(current_actor(), item, data)

    @blp.route(f"/{path}/<int:item_id>", methods=["DELETE"], endpoint=f"remove_{kind}")
    @roles(*MANAGERS)
    @blp.arguments(RemovalIn, location="query")
    @blp.response(204)
    def remove(args: dict[str, Any], item_id: int) -> None:
        item = trials_service.get_design_item(kind, item_id)
        trials_service.remove_design_item(current_actor(), item, args.get("reason"))

    update.__doc__ = f"Correct a {kind.replace('_', ' ')} while the trial is in setup."
    remove.__doc__ = f"Remove a {kind.replace('_', ' ')} while the trial is in setup."


_design_routes("cohort", "cohorts", CohortPatch, CohortOut)
_design_routes("criterion", "eligibility-criteria", CriterionPatch, CriterionOut)
_design_routes("visit_definition", "visit-definitions", VisitDefinitionPatch, VisitDefinitionOut)


# --- screening ---------------------------------------------------------------------


@blp.route("/screenings", methods=["POST"])
@roles(*SITE_WORK)
@blp.arguments(ScreeningIn)
@blp.response(201, ScreeningOut)
def create_screening(data: dict[str, Any]) -> Any:
    return screening_service.create_screening(current_actor(), data, utcnow())


@blp.route("/screenings", methods=["GET"])
@roles(*SCREENING_READERS)
@blp.arguments(ScreeningQuery, location="query")
@blp.response(200, ScreeningOut(many=True))
@blp.paginate()
def list_screenings(filters: dict[str, Any], pagination_parameters: Any) -> Any:
    return paginate(
        db.session,
        screening_service.screening_query(current_actor(), filters),
        pagination_parameters,
    )


@blp.route("/screenings/export", methods=["GET"])
@roles(*SCREENING_READERS)
@blp.arguments(ScreeningQuery, location="query")
@blp.response(200, content_type="text/csv")
def export_screenings(filters: dict[str, Any]) -> Any:
    """The screening log as CSV (same filters as the list)."""
    from trialmgr.enrollment.export import screening_csv

    return screening_csv(screening_service.screening_query(current_actor(), filters))


@blp.route("/screenings/<int:screening_id>", methods=["GET"])
@roles(*SCREENING_READERS)
@blp.response(200, ScreeningOut)
def get_screening(screening_id: int) -> Any:
    return screening_service.get_screening(current_actor(), screening_id)


@blp.route("/screenings/<int:screening_id>", methods=["PATCH"])
@roles(*SITE_WORK)
@blp.arguments(ScreeningPatch)
@blp.response(200, ScreeningOut)
def update_screening(data: dict[str, Any], screening_id: int) -> Any:
    actor = current_actor()
    return screening_service.set_screening_outcome(
        actor, screening_service.get_screening(actor, screening_id), data, utcnow()
    )


# --- subjects ----------------------------------------------------------------------


@blp.route("/subjects", methods=["POST"])
@roles(*SITE_WORK)
@blp.arguments(EnrolIn)
@blp.response(201, SubjectOut)
def enrol(data: dict[str, Any]) -> Any:
    """Enrol from an eligible screening: 409 when the cohort is full, the site not open,
    the screening not eligible or the trial not open."""
    return subjects_service.enrol(current_actor(), data, utcnow())


@blp.route("/subjects", methods=["GET"])
@roles(*ANY_ROLE)
@blp.arguments(SubjectQuery, location="query")
@blp.response(200, SubjectOut(many=True))
@blp.paginate()
def list_subjects(filters: dict[str, Any], pagination_parameters: Any) -> Any:
    return paginate(
        db.session, subjects_service.subject_query(current_actor(), filters), pagination_parameters
    )


@blp.route("/subjects/<code>", methods=["GET"])
@roles(*ANY_ROLE)
@blp.response(200, SubjectOut)
def get_subject(code: str) -> Any:
    return subjects_service.get_subject(current_actor(), code)


@blp.route("/subjects/<code>/consents", methods=["GET"])
@roles(*ANY_ROLE)
@blp.response(200, ConsentOut(many=True))
def list_consents(code: str) -> Any:
    return subjects_service.get_subject(current_actor(), code).consents


@blp.route("/subjects/<code>/consents", methods=["POST"])
@roles(*SITE_WORK)
@blp.arguments(ConsentIn)
@blp.response(201, ConsentOut)
def record_consent(data: dict[str, Any], code: str) -> Any:
    actor = current_actor()
    return consent_service.record_consent(
        actor, subjects_service.get_subject(actor, code), data, utcnow()
    )


@blp.route("/subjects/<code>/dosing", methods=["POST"])
@roles(*SITE_WORK)
@blp.arguments(DosingIn)
@blp.response(201, DosingOut)
def record_dosing(data: dict[str, Any], code: str) -> Any:
    """Dose once every gate holds; 409 names the gate (and the next allowed date)."""
    actor = current_actor()
    return dosing_service.record_dosing(
        actor, subjects_service.get_subject(actor, code), data, utcnow()
    )


@blp.route("/subjects/<code>/visits", methods=["GET"])
@roles(*ANY_ROLE)
@blp.response(200, VisitOut(many=True))
def list_visits(code: str) -> Any:
    return subjects_service.get_subject(current_actor(), code).visits


@blp.route("/subjects/<code>/deviations", methods=["GET"])
@roles(*ANY_ROLE)
@blp.response(200, DeviationOut(many=True))
def list_deviations(code: str) -> Any:
    return visits_service.deviations_of(subjects_service.get_subject(current_actor(), code))


@blp.route("/subjects/<code>/withdrawal", methods=["POST"])
@roles(*SITE_WORK)
@blp.arguments(WithdrawalIn)
@blp.response(200, SubjectOut)
def withdraw(data: dict[str, Any], code: str) -> Any:
    actor = current_actor()
    return subjects_service.withdraw(
        actor, subjects_service.get_subject(actor, code), data, utcnow()
    )


@blp.route("/subjects/<code>/end", methods=["POST"])
@roles(*SITE_WORK)
@blp.arguments(EndIn)
@blp.response(200, SubjectOut)
def end_participation(data: dict[str, Any], code: str) -> Any:
    """Lost to follow-up, or death (also recorded from a grade 5 adverse event)."""
    actor = current_actor()
    subject = subjects_service.get_subject(actor, code)
    return subjects_service.end_participation(
        actor, subject, data["status"], data["on"], data["reason"], utcnow()
    )


@blp.route("/subjects/<code>/reinstate", methods=["POST"])
@roles(*SITE_WORK)
@blp.arguments(ReinstateIn)
@blp.response(200, SubjectOut)
def reinstate(data: dict[str, Any], code: str) -> Any:
    """A subject lost to follow-up traced again: the contacts still to come are reopened."""
    actor = current_actor()
    return subjects_service.reinstate(
        actor, subjects_service.get_subject(actor, code), data, utcnow()
    )


@blp.route("/visits/<int:visit_id>", methods=["PATCH"])
@roles(*SITE_WORK)
@blp.arguments(VisitPatch)
@blp.response(200, VisitOut)
def record_visit(data: dict[str, Any], visit_id: int) -> Any:
    """Done (date; LTFU contacts answer the delayed-event questions) or missed. Out of window
    or missed records a deviation."""
    actor = current_actor()
    return visits_service.record_visit(
        actor, visits_service.get_visit(actor, visit_id), data, utcnow()
    )


@blp.route("/visits/due", methods=["GET"])
@roles(*WORKLIST_READERS)
@blp.arguments(VisitDueQuery, location="query")
@blp.response(200, VisitOut(many=True))
@blp.paginate()
def visits_due(args: dict[str, Any], pagination_parameters: Any) -> Any:
    """Visits due in the next `days` (default 14) or overdue, in your sites."""
    return paginate(
        db.session,
        visits_service.visits_due(current_actor(), utcnow(), args["days"]),
        pagination_parameters,
    )
