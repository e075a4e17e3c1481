"""What `kiennghi serve` shows at /metrics (Prometheus text format, prometheus_client's default registry).

The counters are incremented where the work happens: the host (an update handled by the core), the
outbox sender (a message sent or failed) and the scheduler (what a reminder sweep queued). The outbox
backlog is read from the store when /metrics is scraped.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, disable_created_metrics, generate_latest

disable_created_metrics()  # a `_created` series beside each counter says when the process started: noise

UPDATES = Counter("kiennghi_updates", "Updates handled by the core, by messenger", ["messenger"])
UPDATE_SECONDS = Histogram(
    "kiennghi_update_seconds", "Time to handle one update in the core (to its commit), by messenger",
    ["messenger"], buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
OUTBOX_SENT = Counter("kiennghi_outbox_sent", "Outbox messages delivered, by messenger", ["messenger"])
OUTBOX_FAILED = Counter("kiennghi_outbox_failed",
                        "Outbox messages given up on (failed for good), by messenger", ["messenger"])
OUTBOX_PENDING = Gauge("kiennghi_outbox_pending", "Outbox messages waiting to be sent (read at scrape time)")
REMINDERS = Counter("kiennghi_reminders",
                    "Messages the reminder sweep queued, by kind (stage, overdue, escalation, digest, arrivals)",
                    ["kind"])


def exposition(pending: float) -> tuple[bytes, str]:
    """The metrics in Prometheus text format with the backlog just read, and their content type."""
    OUTBOX_PENDING.set(pending)
    return generate_latest(), CONTENT_TYPE_LATEST
