"""pages: account and page settings (#8)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01 09:10:00

Partners get `search_text` (name, short name and consortium role with accents removed and
case folded, filled by the application on every write) so the directory search ignores
accents the same way on SQLite and PostgreSQL; existing rows are folded here. Accounts get
`must_change_password` (an administrator-set password is changed at the first sign-in).
"""
import unicodedata

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def _fold(text):
    # The same folding as trialmgr.partners.models.fold, frozen here as of this revision.
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def upgrade():
    with op.batch_alter_table('partner') as batch:
        batch.add_column(sa.Column('search_text', sa.Text(), server_default='', nullable=False))
    with op.batch_alter_table('user_account') as batch:
        batch.add_column(
            sa.Column('must_change_password', sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    partner = sa.table(
        'partner',
        sa.column('id', sa.Integer),
        sa.column('name', sa.String),
        sa.column('short_name', sa.String),
        sa.column('consortium_role', sa.Text),
        sa.column('search_text', sa.Text),
    )
    conn = op.get_bind()
    rows = conn.execute(
        sa.select(partner.c.id, partner.c.name, partner.c.short_name, partner.c.consortium_role)
    ).all()
    for row in rows:
        parts = [p for p in (row.name, row.short_name, row.consortium_role) if p]
        conn.execute(
            partner.update().where(partner.c.id == row.id).values(search_text=_fold(" | ".join(parts)))
        )


def downgrade():
    with op.batch_alter_table('user_account') as batch:
        batch.drop_column('must_change_password')
    with op.batch_alter_table('partner') as batch:
        batch.drop_column('search_text')
