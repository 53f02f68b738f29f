"""Who may take data out: consortium leads and administrators. The data dictionary holds
no trial data (variables, rules, code lists), so every role may read it."""

from __future__ import annotations

from trialmgr.auth.policies import ANY_ROLE, MANAGERS

EXPORTERS = MANAGERS
DICTIONARY_READERS = ANY_ROLE
