"""The JSON gate: every ``JSONBody`` of the kernel's routes is read here, once.

The kernel's router serves its requests with :class:`JSONGateRequest`, whose
``json()`` is what Litestar calls to read a handler's ``data`` (after the
guards ran: a caller without the role learns nothing about their body). It
answers, each with a stable code and before any handler runs:

- 415 ``unsupported_media_type``: a body sent as anything but JSON
  (``application/json`` or ``application/<x>+json``), or with no content type;
- 400 ``malformed_json``: not JSON, not UTF-8, or nested too deeply to read;
- 422 ``invalid_characters``: a NUL character in any string or key (no
  database column takes one, and no client means one);
- 400 ``invalid_request``: the body does not match the handler's type, with
  strict types: ``"quantity": "1"`` is a string, not a number.

The body is decoded once, straight into the handler's type (msgspec's
strict decoder, made once per handler), so Litestar's own conversion has
nothing left to do. Webhooks, which read their raw body to check its
signature, decode it with :func:`decode_json_body` for the same answers.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request
from litestar.exceptions import ValidationException
from litestar.types import Empty

from ..errors import InvalidInput, MallcoreError

_JSON_TYPES = ("application/json",)
_NO_TYPE = object()
# Where a handler's ``opt`` keeps the decoder of its ``data``, made once.
_DECODER = "mallcore.json_decoder"


class UnsupportedMediaType(MallcoreError):
    status = 415
    default_code = "unsupported_media_type"


def _is_json(content_type: str) -> bool:
    media = content_type.partition(";")[0].strip().lower()
    return media in _JSON_TYPES or (media.startswith("application/") and media.endswith("+json"))


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def decode_json_body(body: bytes, decoder: msgspec.json.Decoder[Any] | None = None) -> Any:
    """``body`` as JSON (typed by ``decoder``, strictly), or the 4xx that says why it cannot be.

    See the module docstring for the codes; a body that does not match the
    decoder's type raises Litestar's ``ValidationException`` (400
    ``invalid_request`` with the ``errors``), as Litestar would.
    """
    try:
        if not body.isascii():
            body.decode()  # UTF-8 throughout, even in what the type would skip
        # A NUL reaches a string only through the escape \u0000 (a raw one is malformed JSON).
        if b"\\u0000" in body and _has_nul(msgspec.json.decode(body)):
            raise InvalidInput(
                "the body carries a NUL character (\\u0000), which no field accepts",
                code="invalid_characters",
                status=422,
            )
        return msgspec.json.decode(body) if decoder is None else decoder.decode(body)
    except msgspec.ValidationError as exc:
        message, _, where = str(exc).partition(" - at `")
        raise ValidationException(
            "Validation failed",
            extra=[{"message": message, "key": where.rstrip("`").removeprefix("$."), "source": "body"}],
        ) from None
    except msgspec.DecodeError as exc:
        raise InvalidInput(f"the body is not valid JSON: {exc}", code="malformed_json", status=400) from None
    except UnicodeDecodeError:
        raise InvalidInput("the body is not valid UTF-8", code="malformed_json", status=400) from None
    except RecursionError:
        raise InvalidInput(
            "the body is nested too deeply to read", code="malformed_json", status=400
        ) from None


def _decoder(request: Request[Any, Any, Any]) -> msgspec.json.Decoder[Any] | None:
    """A strict decoder for the handler's ``data`` type, made once per handler."""
    opt = request.route_handler.opt
    decoder = opt.get(_DECODER, _NO_TYPE)
    if decoder is _NO_TYPE:
        field = request.route_handler.parsed_fn_signature.parameters.get("data")
        try:
            decoder = None if field is None else msgspec.json.Decoder(field.raw, strict=True)
        except TypeError:
            decoder = None  # a type msgspec does not build: Litestar converts it as usual
        opt[_DECODER] = decoder
    return decoder


class JSONGateRequest(Request[Any, Any, Any]):
    """A Litestar request whose JSON body passes the gate (see the module docstring)."""

    async def json(self) -> Any:
        if self._json is not Empty:
            return self._json
        state = self._connection_state
        if state.json is not Empty:
            self._json = state.json
            return self._json
        body = await self.body()
        if body and not _is_json(self.headers.get("content-type", "")):
            raise UnsupportedMediaType("send the body as JSON, with Content-Type: application/json")
        value = decode_json_body(body or b"null", _decoder(self))
        self._json = state.json = value
        return value
