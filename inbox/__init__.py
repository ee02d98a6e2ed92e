"""The durable event inbox between the event gateway and the Dagster sensors (a neutral module: it imports
nothing of idlink, the gateway writes it, the fast lane and the sensors read it). See ``inbox.store``."""

from inbox.store import Inbox, InboxEvent, InboxUnavailable

__all__ = ["Inbox", "InboxEvent", "InboxUnavailable"]
