"""How kiennghi logs: one line an event, plain by default, one JSON object a line with LOG_FORMAT=json.

What is logged never holds a token, a secret or what a person wrote: ids, counts, times and errors."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

PLAIN = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """A record as one JSON object: time (UTC, ISO 8601), level, logger, message, and the exception's
    text with its traceback when there is one (the newlines escaped, so it stays one line)."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        entry = {"time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
                 "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(log_format: str = "plain", level: int = logging.INFO) -> None:
    """Log to standard error in the chosen format, and quiet the libraries that say too much."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(PLAIN))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    # httpx logs every request at INFO, with its URL, and a Bot API's URL holds the token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # APScheduler logs every run of every job at INFO: a timer firing is not news.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
