"""reports: the report archive (one row per kind, trial, scope and period), report schedules
and their subscribers, the scheduler's leader lease (SQLite), and APScheduler's job store
table, declared here with exactly APScheduler 3's columns

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 07:38:11.331262

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

# The codes as of this revision (a migration does not import the application).
REPORT_KINDS = ('dsmb_safety', 'site_enrollment', 'feasibility')
REPORT_STATUSES = ('pending', 'running', 'done', 'failed')


def _one_of(column, values):
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade():
    # APScheduler's SQLAlchemyJobStore table (apscheduler/jobstores/sqlalchemy.py, 3.x): the
    # store finds it here and does not create it itself.
    op.create_table('apscheduler_jobs',
    sa.Column('id', sa.Unicode(length=191), nullable=False),
    sa.Column('next_run_time', sa.Float(precision=25), nullable=True),
    sa.Column('job_state', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_apscheduler_jobs'))
    )
    with op.batch_alter_table('apscheduler_jobs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_apscheduler_jobs_next_run_time'), ['next_run_time'], unique=False)

    # One row while a scheduler is active on SQLite (PostgreSQL uses an advisory lock).
    op.create_table('scheduler_lease',
    sa.Column('name', sa.String(length=40), nullable=False),
    sa.Column('holder', sa.String(length=120), nullable=False),
    sa.Column('acquired_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_scheduler_lease'))
    )
    op.create_table('report_schedule',
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('trial_id', sa.Integer(), nullable=False),
    sa.Column('cron', sa.String(length=120), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_by', sa.String(length=255), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint(_one_of('kind', REPORT_KINDS), name=op.f('ck_report_schedule_kind_known')),
    sa.ForeignKeyConstraint(['trial_id'], ['trial.id'], name=op.f('fk_report_schedule_trial_id_trial')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_report_schedule')),
    sa.UniqueConstraint('kind', 'trial_id', 'cron', name=op.f('uq_report_schedule_kind_trial_id_cron'))
    )
    with op.batch_alter_table('report_schedule', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_report_schedule_trial_id'), ['trial_id'], unique=False)

    # A trial-wide report's scope is 'trial', a one-site report's 'site:<site_id>', so that
    # the unique key has no NULL in it (NULLs never collide) and a second scheduler, a
    # retry or a repeated request finds the existing row.
    op.create_table('report',
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('trial_id', sa.Integer(), nullable=False),
    sa.Column('scope', sa.String(length=20), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=True),
    sa.Column('period_start', sa.Date(), nullable=False),
    sa.Column('period_end', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('schedule_id', sa.Integer(), nullable=True),
    sa.Column('requested_by', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('generated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('template', sa.String(length=40), nullable=True),
    sa.Column('file_path', sa.String(length=255), nullable=True),
    sa.Column('size', sa.BigInteger(), nullable=True),
    sa.Column('sha256', sa.String(length=64), nullable=True),
    sa.Column('audit_head', sa.String(length=64), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.CheckConstraint("(scope = 'trial' AND site_id IS NULL) OR scope = ('site:' || site_id)", name=op.f('ck_report_scope_matches_site')),
    sa.CheckConstraint(_one_of('kind', REPORT_KINDS), name=op.f('ck_report_kind_known')),
    sa.CheckConstraint(_one_of('status', REPORT_STATUSES), name=op.f('ck_report_status_known')),
    sa.CheckConstraint('period_start <= period_end', name=op.f('ck_report_period_ordered')),
    sa.ForeignKeyConstraint(['schedule_id'], ['report_schedule.id'], name=op.f('fk_report_schedule_id_report_schedule')),
    sa.ForeignKeyConstraint(['site_id'], ['site.id'], name=op.f('fk_report_site_id_site')),
    sa.ForeignKeyConstraint(['trial_id'], ['trial.id'], name=op.f('fk_report_trial_id_trial')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_report')),
    sa.UniqueConstraint('kind', 'trial_id', 'scope', 'period_start', 'period_end', name=op.f('uq_report_kind_trial_id_scope_period_start_period_end'))
    )
    with op.batch_alter_table('report', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_report_site_id'), ['site_id'], unique=False)
        batch_op.create_index('ix_report_status_next_attempt_at', ['status', 'next_attempt_at'], unique=False)
        batch_op.create_index('ix_report_trial_id_kind', ['trial_id', 'kind'], unique=False)

    op.create_table('report_subscription',
    sa.Column('schedule_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['schedule_id'], ['report_schedule.id'], name=op.f('fk_report_subscription_schedule_id_report_schedule')),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_report_subscription_user_id_user_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_report_subscription')),
    sa.UniqueConstraint('schedule_id', 'user_id', name=op.f('uq_report_subscription_schedule_id_user_id'))
    )
    with op.batch_alter_table('report_subscription', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_report_subscription_user_id'), ['user_id'], unique=False)


def downgrade():
    # The generated PDFs stay under instance/reports/; only their records go.
    with op.batch_alter_table('report_subscription', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_report_subscription_user_id'))

    op.drop_table('report_subscription')
    with op.batch_alter_table('report', schema=None) as batch_op:
        batch_op.drop_index('ix_report_trial_id_kind')
        batch_op.drop_index('ix_report_status_next_attempt_at')
        batch_op.drop_index(batch_op.f('ix_report_site_id'))

    op.drop_table('report')
    with op.batch_alter_table('report_schedule', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_report_schedule_trial_id'))

    op.drop_table('report_schedule')
    op.drop_table('scheduler_lease')
    with op.batch_alter_table('apscheduler_jobs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_apscheduler_jobs_next_run_time'))

    op.drop_table('apscheduler_jobs')
