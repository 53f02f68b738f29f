"""Data out: CDISC ODM 1.3.2, HL7 FHIR R4B, a de-identified analysis export and the data
dictionary (issue 15). Consortium leads and administrators only; every export is audited."""
