"""The HTTP side of the kernel: the app factory, the mounting plugin, and the
primitives every center's routes share (guards, idempotent replies, the
center router)."""

from ..idempotency import Reply
from .app import MallcorePlugin, create_app
from .bodies import decode_json_body
from .errors import resend_on_conflict
from .guards import platform, principal_of, roles, use_principal
from .limits import WEBHOOK
from .replies import IdempotencyKey, Idempotent, IdempotentWrite, raw_json
from .routing import BuiltRouter, center_router

__all__ = [
    "WEBHOOK",
    "BuiltRouter",
    "IdempotencyKey",
    "Idempotent",
    "IdempotentWrite",
    "MallcorePlugin",
    "Reply",
    "center_router",
    "create_app",
    "decode_json_body",
    "platform",
    "principal_of",
    "raw_json",
    "resend_on_conflict",
    "roles",
    "use_principal",
]
