"""Domain errors that cross the RPC boundary as themselves.

nameko re-raises a registered exception type on the caller's side, so the
gateway can turn each into its HTTP problem without parsing strings.
"""
from nameko.exceptions import deserialize_to_instance


class DomainError(Exception):
    status = 400
    title = "Bad request"

    def __init__(self, detail: str, fields: list | None = None):
        super().__init__(detail, fields or [])
        self.detail = detail
        self.fields = fields or []


@deserialize_to_instance
class NotAuthenticated(DomainError):
    """No valid key (unknown, malformed or revoked)."""
    status = 401
    title = "Unauthorized"


@deserialize_to_instance
class Forbidden(DomainError):
    """A valid key without the scope the action needs."""
    status = 403
    title = "Forbidden"


@deserialize_to_instance
class NotFound(DomainError):
    status = 404
    title = "Not found"


@deserialize_to_instance
class Conflict(DomainError):
    status = 409
    title = "Conflict"


@deserialize_to_instance
class Invalid(DomainError):
    """The request is well-formed but its content is wrong; ``fields`` says where."""
    status = 422
    title = "Validation failed"


@deserialize_to_instance
class BadQuery(DomainError):
    """A query parameter names nothing there is (a cursor of another list, say)."""
    status = 400
    title = "Bad query parameter"


@deserialize_to_instance
class NotAllowed(DomainError):
    """The action does not fit the registration's current state."""
    status = 409
    title = "Not allowed in this state"


class NotYet(Exception):
    """A message that depends on another one that has not arrived yet (a
    registration for an event not yet described, say). Retried quietly."""


class EventNotKnownYet(NotYet):
    """A message about an event whose description (``event.published``)
    has not reached this service yet."""
