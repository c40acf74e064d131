"""FastAPI dependencies, with the ``Annotated`` aliases every route uses."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, Protocol

from fastapi import Depends, HTTPException, Path, Query, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from engine.api.paths import SERVICE_SEGMENT_PATTERN, stored_service_name
from engine.scorecard import NAME_PATTERN
from engine.settings import Settings
from engine.storage.database import engine_for

MAX_OFFSET = 1_000_000_000


class RunDispatcher(Protocol):
    """Starts a created run without blocking the request."""

    def submit(self, run_id: int, service: str | None) -> None: ...


def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


def get_session(settings: SettingsDep) -> Iterator[Session]:
    with Session(engine_for(settings.database_url), expire_on_commit=False) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def get_dispatcher(request: Request) -> RunDispatcher:
    dispatcher: RunDispatcher = request.app.state.dispatcher
    return dispatcher


DispatcherDep = Annotated[RunDispatcher, Depends(get_dispatcher)]

bearer = HTTPBearer(auto_error=False, description="LEVELSET_API_TOKEN (writes) or "
                    "LEVELSET_READ_TOKEN (reads, when api.read_token_required).")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, message,
                         headers={"WWW-Authenticate": "Bearer"})


def require_read(settings: SettingsDep, credentials: Credentials) -> None:
    token = credentials.credentials if credentials else None
    if not settings.check_read_token(token):
        raise _unauthorized("a valid bearer token is required to read (api.read_token_required)")


def require_write(settings: SettingsDep, credentials: Credentials) -> None:
    if not settings.writes_enabled:
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            "writes are disabled: set LEVELSET_API_TOKEN on the server")
    token = credentials.credentials if credentials else None
    if not settings.check_write_token(token):
        raise _unauthorized("a valid bearer token (LEVELSET_API_TOKEN) is required to write")


ReadAccess = Depends(require_read)
WriteAccess = Depends(require_write)



def service_from_path(
    service: Annotated[str, Path(
        pattern=SERVICE_SEGMENT_PATTERN, max_length=127,
        description="Service: its catalog name, or namespace:name outside the default "
        "namespace (team-x:svc for the Component svc of namespace team-x).")],
) -> str:
    return stored_service_name(service)


# The service named in the path, as stored (``team-x:svc`` -> ``team-x/svc``).
ServiceName = Annotated[str, Depends(service_from_path)]
ScorecardName = Annotated[str, Path(pattern=NAME_PATTERN, max_length=63,
                                    description="Scorecard name.")]
Limit = Annotated[int, Query(ge=1, le=1000, description="Page size.")]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Items to skip.")]
Text = Annotated[str | None, Query(max_length=253, pattern=r"^[^\x00]*$")]


def as_utc(moment: datetime | None, name: str) -> datetime | None:
    """Query times: naive means UTC; out-of-range values are the caller's error (422)."""
    if moment is None:
        return None
    try:
        aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        return aware.astimezone(UTC)
    except (OverflowError, ValueError):
        raise HTTPException(422, f"{name}: {moment.isoformat()} is out of range") from None
