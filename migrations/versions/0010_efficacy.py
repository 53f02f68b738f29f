"""efficacy: endpoints per trial and measurements per subject and visit; the indexes the
safety dashboard reads (adverse events by trial, site, subject and SOC with the columns its
aggregates group and filter on; serious, SUSAR and AESI events by site; open clocks by
trial and due time; lab draws by trial, subject and analyte)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 07:33:24.975900

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('efficacy_endpoint',
    sa.Column('trial_id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=20), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('unit', sa.String(length=30), nullable=False),
    sa.Column('direction', sa.String(length=20), nullable=False),
    sa.Column('primary', sa.Boolean(), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("direction IN ('higher_is_better', 'lower_is_better')", name=op.f('ck_efficacy_endpoint_direction_known')),
    sa.ForeignKeyConstraint(['trial_id'], ['trial.id'], name=op.f('fk_efficacy_endpoint_trial_id_trial')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_efficacy_endpoint')),
    sa.UniqueConstraint('trial_id', 'code', name=op.f('uq_efficacy_endpoint_trial_id_code'))
    )
    with op.batch_alter_table('efficacy_endpoint', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_efficacy_endpoint_trial_id'), ['trial_id'], unique=False)

    op.create_table('efficacy_measurement',
    sa.Column('trial_id', sa.Integer(), nullable=False),
    sa.Column('subject_id', sa.Integer(), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('cohort_id', sa.Integer(), nullable=False),
    sa.Column('endpoint_id', sa.Integer(), nullable=False),
    sa.Column('visit_id', sa.Integer(), nullable=True),
    sa.Column('value', sa.Numeric(precision=18, scale=6), nullable=False),
    sa.Column('measured_on', sa.Date(), nullable=False),
    sa.Column('baseline', sa.Boolean(), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['cohort_id'], ['cohort.id'], name=op.f('fk_efficacy_measurement_cohort_id_cohort')),
    sa.ForeignKeyConstraint(['endpoint_id'], ['efficacy_endpoint.id'], name=op.f('fk_efficacy_measurement_endpoint_id_efficacy_endpoint')),
    sa.ForeignKeyConstraint(['site_id'], ['site.id'], name=op.f('fk_efficacy_measurement_site_id_site')),
    sa.ForeignKeyConstraint(['subject_id'], ['subject.id'], name=op.f('fk_efficacy_measurement_subject_id_subject')),
    sa.ForeignKeyConstraint(['trial_id'], ['trial.id'], name=op.f('fk_efficacy_measurement_trial_id_trial')),
    sa.ForeignKeyConstraint(['visit_id'], ['visit.id'], name=op.f('fk_efficacy_measurement_visit_id_visit')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_efficacy_measurement'))
    )
    with op.batch_alter_table('efficacy_measurement', schema=None) as batch_op:
        batch_op.create_index('ix_efficacy_measurement_endpoint_cohort', ['endpoint_id', 'cohort_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_efficacy_measurement_site_id'), ['site_id'], unique=False)
        batch_op.create_index('ix_efficacy_measurement_subject_endpoint', ['subject_id', 'endpoint_id', 'measured_on'], unique=False)
        batch_op.create_index(batch_op.f('ix_efficacy_measurement_trial_id'), ['trial_id'], unique=False)

    with op.batch_alter_table('adverse_event', schema=None) as batch_op:
        batch_op.create_index('ix_adverse_event_dashboard', ['trial_id', 'site_id', 'subject_id', 'soc', 'grade', 'cohort_id', 'onset_date'], unique=False)
        batch_op.create_index('ix_adverse_event_trial_aesi', ['trial_id', 'aesi', 'site_id', 'onset_date'], unique=False)
        batch_op.create_index('ix_adverse_event_trial_serious', ['trial_id', 'serious', 'site_id', 'resolution_date'], unique=False)
        batch_op.create_index('ix_adverse_event_trial_susar', ['trial_id', 'susar', 'site_id'], unique=False)

    with op.batch_alter_table('expedited_report', schema=None) as batch_op:
        batch_op.create_index('ix_expedited_report_trial_open_due', ['trial_id', 'submitted_at', 'due_at'], unique=False)

    with op.batch_alter_table('lab_result', schema=None) as batch_op:
        batch_op.create_index('ix_lab_result_trial_subject_analyte', ['trial_id', 'subject_id', 'analyte', 'collected_at', 'grade'], unique=False)



def downgrade():
    with op.batch_alter_table('lab_result', schema=None) as batch_op:
        batch_op.drop_index('ix_lab_result_trial_subject_analyte')

    with op.batch_alter_table('expedited_report', schema=None) as batch_op:
        batch_op.drop_index('ix_expedited_report_trial_open_due')

    with op.batch_alter_table('adverse_event', schema=None) as batch_op:
        batch_op.drop_index('ix_adverse_event_trial_susar')
        batch_op.drop_index('ix_adverse_event_trial_serious')
        batch_op.drop_index('ix_adverse_event_trial_aesi')
        batch_op.drop_index('ix_adverse_event_dashboard')

    with op.batch_alter_table('efficacy_measurement', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_efficacy_measurement_trial_id'))
        batch_op.drop_index('ix_efficacy_measurement_subject_endpoint')
        batch_op.drop_index(batch_op.f('ix_efficacy_measurement_site_id'))
        batch_op.drop_index('ix_efficacy_measurement_endpoint_cohort')

    op.drop_table('efficacy_measurement')
    with op.batch_alter_table('efficacy_endpoint', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_efficacy_endpoint_trial_id'))

    op.drop_table('efficacy_endpoint')
