"""Enrolment operations, one module per sub-domain: trials (design), consent, oversight
(safety reviews and pauses), screening, subjects (enrolment and exits), dosing (gates and
the cohort board), schedule (visit plans) and visits."""
