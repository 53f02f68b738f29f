"""feasibility: milestones (per trial, optionally per site; a cohort's completion names its
cohort), progression criteria (one per metric and trial, exact decimal targets), and the
trial's opt-in public summary (off for every existing trial)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 07:34:38.892918

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

# The codes as of this revision (a migration does not import the application).
METRICS = ('recruitment_rate', 'screen_to_enrol_ratio', 'eligibility_rate', 'consent_rate', 'retention', 'visit_adherence', 'data_completeness', 'sae_timeliness')
MILESTONE_KINDS = ('protocol_approved', 'first_site_activated', 'first_subject_screened', 'first_subject_dosed', 'cohort_complete', 'last_subject_dosed', 'primary_follow_up_complete', 'database_lock', 'dsmb_meeting', 'progression_review', 'other')


def _one_of(column, values):
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade():
    op.create_table('progression_criterion',
    sa.Column('trial_id', sa.Integer(), nullable=False),
    sa.Column('metric', sa.String(length=30), nullable=False),
    sa.Column('target', sa.Numeric(precision=14, scale=6), nullable=False),
    sa.Column('amber_fraction', sa.Numeric(precision=7, scale=6), server_default='0.5', nullable=False),
    sa.Column('notes', sa.Text(), nullable=True),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint(_one_of('metric', METRICS), name=op.f('ck_progression_criterion_metric_known')),
    sa.CheckConstraint('amber_fraction > 0 AND amber_fraction <= 1', name=op.f('ck_progression_criterion_amber_fraction_range')),
    sa.CheckConstraint('target > 0', name=op.f('ck_progression_criterion_target_positive')),
    sa.ForeignKeyConstraint(['trial_id'], ['trial.id'], name=op.f('fk_progression_criterion_trial_id_trial')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_progression_criterion')),
    sa.UniqueConstraint('trial_id', 'metric', name=op.f('uq_progression_criterion_trial_id_metric'))
    )
    with op.batch_alter_table('progression_criterion', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_progression_criterion_trial_id'), ['trial_id'], unique=False)

    op.create_table('milestone',
    sa.Column('trial_id', sa.Integer(), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=True),
    sa.Column('cohort_id', sa.Integer(), nullable=True),
    sa.Column('kind', sa.String(length=30), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('planned_on', sa.Date(), nullable=False),
    sa.Column('achieved_on', sa.Date(), nullable=True),
    sa.Column('notes', sa.Text(), nullable=True),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("(kind = 'cohort_complete') = (cohort_id IS NOT NULL)", name=op.f('ck_milestone_cohort_iff_complete')),
    sa.CheckConstraint(_one_of('kind', MILESTONE_KINDS), name=op.f('ck_milestone_kind_known')),
    sa.ForeignKeyConstraint(['cohort_id'], ['cohort.id'], name=op.f('fk_milestone_cohort_id_cohort')),
    sa.ForeignKeyConstraint(['site_id'], ['site.id'], name=op.f('fk_milestone_site_id_site')),
    sa.ForeignKeyConstraint(['trial_id'], ['trial.id'], name=op.f('fk_milestone_trial_id_trial')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_milestone'))
    )
    with op.batch_alter_table('milestone', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_milestone_site_id'), ['site_id'], unique=False)
        batch_op.create_index('ix_milestone_trial_id_planned_on', ['trial_id', 'planned_on'], unique=False)

    with op.batch_alter_table('trial', schema=None) as batch_op:
        batch_op.add_column(sa.Column('public_summary', sa.Boolean(), server_default=sa.false(), nullable=False))



def downgrade():
    with op.batch_alter_table('trial', schema=None) as batch_op:
        batch_op.drop_column('public_summary')

    with op.batch_alter_table('milestone', schema=None) as batch_op:
        batch_op.drop_index('ix_milestone_trial_id_planned_on')
        batch_op.drop_index(batch_op.f('ix_milestone_site_id'))

    op.drop_table('milestone')
    with op.batch_alter_table('progression_criterion', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_progression_criterion_trial_id'))

    op.drop_table('progression_criterion')
