"""The console's one table: its sessions, so that a session can end before its cookie expires.

A row per sign-in. The cookie carries the session's random id (signed, see
:mod:`.session`); the row is found by the id's SHA-256, so a copy of the table
opens no session. The token typed at sign-in is kept masked under the id
(``token``): the server re-resolves it on each request, so revoking the token,
or the host identity no longer accepting it, ends the session within the
kernel's token cache time (a second). Signing out sets ``ended_at``: a copy of
the cookie taken before is refused from then on.
"""

from __future__ import annotations

import sqlalchemy as sa

from mallcore.kernel.columns import Time

metadata = sa.MetaData()

sessions = sa.Table(
    "console_sessions",
    metadata,
    # SHA-256 (hex) of the random session id the cookie carries
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("subject", sa.String(128), nullable=False),
    sa.Column("shop", sa.String(64), nullable=True),
    # the API token typed at sign-in, masked under the session id (base64url)
    sa.Column("token", sa.Text, nullable=False),
    sa.Column("created_at", Time(), nullable=False),
    sa.Column("expires_at", Time(), nullable=False),
    # signed out, or the token stopped resolving
    sa.Column("ended_at", Time(), nullable=True),
    sa.Index("ix_console_sessions_expires", "expires_at"),
)
