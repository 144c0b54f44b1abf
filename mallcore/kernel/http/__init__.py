"""The HTTP side of the kernel: the app factory, the mounting plugin, helpers for center routes."""

from .app import MallcorePlugin, create_app
from .errors import resend_on_conflict
from .orders import IdempotencyKey, idempotent, raw_json

__all__ = ["IdempotencyKey", "MallcorePlugin", "create_app", "idempotent", "raw_json", "resend_on_conflict"]
