"""Structured logs: one JSON object per line, with the request id bound for everything a request logs.

Logs never carry customer data. Database errors are the way it would leak: their messages hold bound
parameters, the values PostgreSQL quotes in DETAIL lines (`Key (email)=(...) already exists`,
`Failing row contains (...)`) or in the message itself (`invalid input syntax ...: "..."`). So every
exception is rendered by ``safe_traceback``: the usual traceback (frames and source lines), with the
message of any database error in the chain, causes and contexts included, reduced to its class and
SQLSTATE. That holds for structlog lines (``exception`` key) and for records of the standard
``logging`` module (uvicorn's "Exception in ASGI application"), through a record factory.
"""

import logging
import sys
import traceback
from types import TracebackType
from typing import Any

import structlog
from pydantic import ValidationError

# Exceptions from these packages may quote values from the database or the query; their messages
# are never logged.
_DATABASE_PACKAGES = frozenset({"asyncpg", "sqlalchemy", "psycopg", "psycopg2", "pgqueuer"})
_CAUSE = "\nThe above exception was the direct cause of the following exception:\n\n"
_CONTEXT = "\nDuring handling of the above exception, another exception occurred:\n\n"

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


def _is_database_error(exc: BaseException) -> bool:
    return type(exc).__module__.partition(".")[0] in _DATABASE_PACKAGES


def _sqlstate(exc: BaseException) -> str | None:
    for candidate in (exc, getattr(exc, "orig", None), getattr(exc, "__cause__", None)):
        code = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if isinstance(code, str):
            return code
    return None


def safe_message(exc: BaseException) -> str:
    """What may be logged of an exception's message."""
    if _is_database_error(exc):
        sqlstate = _sqlstate(exc)
        where = f"SQLSTATE {sqlstate}" if sqlstate else "no SQLSTATE"
        return f"[{where}; database message withheld from logs]"
    if isinstance(exc, ValidationError):  # its text quotes the invalid input
        fields = ", ".join(".".join(str(p) for p in e["loc"]) or "-" for e in exc.errors())
        return f"{exc.error_count()} validation error(s) for {exc.title}: {fields}"
    return str(exc)


def _type_name(exc: BaseException) -> str:
    kind = type(exc)
    module = kind.__module__
    return (
        kind.__qualname__ if module in ("builtins", "__main__") else f"{module}.{kind.__qualname__}"
    )


def safe_traceback(exc: BaseException) -> str:
    """The traceback of ``exc`` and of the exceptions it was raised from or during, as Python prints
    it, but with every message passed through ``safe_message`` (and no ``__notes__``)."""
    chain: list[tuple[BaseException, str]] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    link = ""
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append((current, link))
        if current.__cause__ is not None:
            current, link = current.__cause__, _CAUSE
        elif current.__context__ is not None and not current.__suppress_context__:
            current, link = current.__context__, _CONTEXT
        else:
            current = None
    parts: list[str] = []
    # Oldest first, as the interpreter prints chains; each link text sits between two exceptions.
    for index, (item, _) in enumerate(reversed(chain)):
        if index:
            parts.append(chain[len(chain) - index][1])
        if item.__traceback__ is not None:
            parts.append("Traceback (most recent call last):\n")
            parts.extend(traceback.format_tb(item.__traceback__))
        parts.append(f"{_type_name(item)}: {safe_message(item)}\n")
    return "".join(parts).rstrip("\n")


def _exception_of(exc_info: Any) -> BaseException | None:
    if isinstance(exc_info, BaseException):
        return exc_info
    if isinstance(exc_info, tuple):
        return exc_info[1] if len(exc_info) > 1 else None
    if exc_info:
        return sys.exc_info()[1]
    return None


def safe_exc_info(
    logger: Any, method_name: str, event_dict: structlog.types.EventDict
) -> structlog.types.EventDict:
    """structlog processor, in place of ``format_exc_info``: ``exc_info`` becomes an ``exception``
    string rendered by ``safe_traceback``."""
    exc_info = event_dict.pop("exc_info", None)
    exc = _exception_of(exc_info)
    if exc is not None:
        event_dict["exception"] = safe_traceback(exc)
    return event_dict


_previous_factory: Any = None


def _install_safe_records() -> None:
    """Render exceptions of standard ``logging`` records safely, once, as the record is made; later
    formatters use that text (``exc_text``) and have no exception object left to render."""
    global _previous_factory
    if _previous_factory is not None:
        return
    _previous_factory = logging.getLogRecordFactory()
    previous = _previous_factory

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record: logging.LogRecord = previous(*args, **kwargs)
        if record.exc_info:
            exc = _exception_of(record.exc_info)
            if exc is not None:
                record.exc_text = safe_traceback(exc)
            record.exc_info = None
        return record

    logging.setLogRecordFactory(factory)


def configure_logging(level: str = "info", json: bool = True) -> None:
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    )
    _install_safe_records()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            safe_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        # No file given: PrintLogger then prints to whatever sys.stdout is at the time.
        logger_factory=structlog.PrintLoggerFactory(),
        cache_logger_on_first_use=True,
    )
