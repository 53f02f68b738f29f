"""performance indexes (#14): the safety dashboard's grade chart and lab sections

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-01 09:10:00

- ix_adverse_event_grade_chart (trial_id, site_id, cohort_id, grade): events per cohort and
  grade, grouped per site first, read in grouping order from four narrow columns.
- ix_lab_result_dashboard (trial_id, site_id, subject_id, analyte, collected_at, grade,
  uln_multiple): lab shifts and the ALT chart grouped by site, subject and analyte without
  reading the table; a coordinator's sites are ranges of it.
"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index(
        'ix_adverse_event_grade_chart',
        'adverse_event',
        ['trial_id', 'site_id', 'cohort_id', 'grade'],
    )
    op.create_index(
        'ix_lab_result_dashboard',
        'lab_result',
        ['trial_id', 'site_id', 'subject_id', 'analyte', 'collected_at', 'grade', 'uln_multiple'],
    )


def downgrade():
    op.drop_index('ix_lab_result_dashboard', table_name='lab_result')
    op.drop_index('ix_adverse_event_grade_chart', table_name='adverse_event')
