"""Structured logs: one JSON object per line, from Kehu's own structlog loggers and from every
standard ``logging`` logger alike (uvicorn, asyncpg, SQLAlchemy, pgqueuer, strawberry, any other
library, ``warnings``), with the request id bound for everything a request logs. With
``KEHU_LOG_JSON=false`` the same events are rendered as readable console lines instead.

Kehu's own events go straight from structlog to the output; records of the standard library go to
one handler on the root logger whose structlog ``ProcessorFormatter`` runs the same processors, so
both kinds of line have the same fields (``timestamp``, ``level``, ``logger``, ``event``). Both write
whole lines under one lock, so lines never interleave. `kehu serve` hands uvicorn a log config
(``uvicorn_log_config``) that installs this instead of uvicorn's plain-text handlers, in the server
process and in every worker process it spawns.

Logs never carry customer data. Database errors are the way it would leak: their messages hold bound
parameters, the values PostgreSQL quotes in DETAIL lines (`Key (email)=(...) already exists`,
`Failing row contains (...)`) or in the message itself (`invalid input syntax ...: "..."`). So every
exception is rendered by ``safe_traceback``: the usual traceback (frames and source lines), with the
message of any database error in the chain, causes and contexts included, reduced to its class and
SQLSTATE. That holds for structlog events (``exc_info``) and for records of the standard ``logging``
module (uvicorn's "Exception in ASGI application"), through a record factory that renders the
exception as the record is made; either way a line carries it as ``exception``: ``{"type",
"message", "traceback"}`` in JSON, the traceback text on the console. Nothing renders frame locals.
"""

import logging
import sys
import threading
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


def exception_fields(exc: BaseException) -> dict[str, str]:
    """What a log line carries of an exception: its type, and its message and traceback as
    ``safe_message`` and ``safe_traceback`` give them."""
    return {
        "type": _type_name(exc),
        "message": safe_message(exc),
        "traceback": safe_traceback(exc),
    }


# The LogRecord attribute the record factory leaves an exception's fields in.
_RECORD_EXCEPTION = "kehu_exception"


class SafeExceptions:
    """structlog processor, in place of ``format_exc_info`` or ``dict_tracebacks`` (which would
    render database messages, and frame locals): an event's ``exc_info``, or the exception a
    standard record was made with, becomes ``exception``, structured or as traceback text."""

    def __init__(self, structured: bool) -> None:
        self.structured = structured

    def __call__(
        self, logger: Any, method_name: str, event_dict: structlog.types.EventDict
    ) -> structlog.types.EventDict:
        exc = _exception_of(event_dict.pop("exc_info", None))
        fields = (
            exception_fields(exc)
            if exc is not None
            else getattr(event_dict.get("_record"), _RECORD_EXCEPTION, None)
        )
        if fields is not None:
            event_dict["exception"] = fields if self.structured else fields["traceback"]
        return event_dict


def _strip_trailing_newlines(
    logger: Any, method_name: str, event_dict: structlog.types.EventDict
) -> structlog.types.EventDict:
    """Standard records' messages may end in a newline (uvicorn's "Exception in ASGI
    application\\n", every ``warnings`` message); a console line should not."""
    event = event_dict.get("event")
    if isinstance(event, str):
        event_dict["event"] = event.rstrip("\n")
    return event_dict


_previous_factory: Any = None


def _install_safe_records() -> None:
    """Render exceptions of standard ``logging`` records safely, once, as the record is made; later
    formatters (Kehu's, and any other handler's, such as a test's capture) have no exception object
    left to render, only that text (``exc_text``) and Kehu's fields."""
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
                fields = exception_fields(exc)
                record.exc_text = fields["traceback"]
                setattr(record, _RECORD_EXCEPTION, fields)
            record.exc_info = None
        return record

    logging.setLogRecordFactory(factory)


_WRITE_LOCK = threading.Lock()


def _write_line(line: str) -> None:
    """One whole line to whatever ``sys.stdout`` is at the time (a test's capture included), in one
    write under the lock every log line is written with, so lines of threads never interleave."""
    stream = sys.stdout
    if stream is None:  # no console at all (pythonw, a closed descriptor): as print() does
        return
    with _WRITE_LOCK:
        stream.write(line + "\n")
        stream.flush()


class _LineLogger:
    """The output of Kehu's structlog loggers."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name  # the ``logger`` field (structlog.stdlib.add_logger_name reads it)

    def msg(self, message: str) -> None:
        _write_line(message)

    debug = info = warning = warn = error = critical = exception = fatal = log = msg


def _line_logger(*names: Any) -> _LineLogger:
    return _LineLogger(str(names[0]) if names and names[0] else "kehu")


class _LineHandler(logging.Handler):
    """The one handler of the root logger: every standard record, formatted by structlog's
    ``ProcessorFormatter``, as a line of its own."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            _write_line(self.format(record))
        except Exception:
            self.handleError(record)


def _prints_plain_text(handler: logging.Handler) -> bool:
    """A plain stream handler on the console (``logging.basicConfig``'s, say), which would print
    records a second time, unformatted."""
    consoles = (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__)
    return type(handler) is logging.StreamHandler and handler.stream in consoles


def _level_number(level: str) -> int:
    numeric = logging.getLevelName(level.upper())
    return numeric if isinstance(numeric, int) else logging.INFO


# Records of other libraries below this level are dropped whatever KEHU_LOG_LEVEL says: their info
# lines are chatter (an HTTP client logs every URL it requests, query string included), and before
# they were bridged none below it was printed either.
_LIBRARY_LEVEL_FLOOR = logging.WARNING
_bridge: _LineHandler | None = None
# structlog's processors, one list changed in place: loggers cached on first use keep the list they
# were made with, so a later configuration (another app built in the process, a test capturing
# events) reaches them too.
_processors: list[structlog.types.Processor] = []


def configure_logging(level: str = "info", json: bool = True) -> None:
    """Configure structlog and the standard ``logging`` module alike; safe to call again (each app
    built calls it), the previous configuration being replaced, not added to (though a structlog
    logger already used keeps the level it was made with)."""
    _configure(level, json)


def _configure(level: str, json: bool) -> logging.Handler:
    """``configure_logging``; returns the root logger's handler."""
    global _bridge
    numeric = _level_number(level)
    _install_safe_records()
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        SafeExceptions(structured=json),
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(colors=sys.stdout.isatty())
    )
    _processors[:] = [*shared, renderer]
    structlog.configure(
        processors=_processors,
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=_line_logger,
        cache_logger_on_first_use=True,
    )

    bridge = _LineHandler()
    bridge.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[_strip_trailing_newlines, *shared],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    for handler in root.handlers[:]:
        if handler is _bridge or _prints_plain_text(handler):
            root.removeHandler(handler)
    root.addHandler(bridge)
    root.setLevel(max(numeric, _LIBRARY_LEVEL_FLOOR))
    _bridge = bridge
    # Python's warnings (a library's DeprecationWarning) become records of ``py.warnings`` instead
    # of text printed to stderr.
    logging.captureWarnings(True)
    return bridge


def configured_handler(log_level: str, json: bool) -> logging.Handler:
    """``logging.config.dictConfig`` factory of ``uvicorn_log_config``: configures logging as
    ``configure_logging`` does, in whichever process uvicorn applies its log config, and returns
    the root logger's handler so the config can name it."""
    return _configure(log_level, json)


_UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")


def uvicorn_log_config(level: str, json: bool) -> dict[str, Any]:
    """uvicorn's ``log_config`` for Kehu: uvicorn applies it in its own process and again in every
    worker process it spawns (``--workers N``), before it loads the app, so uvicorn's own lines
    (and an error loading the app) are Kehu lines too. Its loggers keep no handlers of their own
    and propagate to the root logger's one handler, at the level the root logger has."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {
            "kehu": {"()": f"{__name__}.configured_handler", "log_level": level, "json": json}
        },
        "root": {"handlers": ["kehu"]},
        "loggers": {
            name: {"handlers": [], "propagate": True, "level": "NOTSET"}
            for name in _UVICORN_LOGGERS
        },
    }
