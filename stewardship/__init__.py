"""Steward decisions on identity-contact pairs (link, never link, unlink), recorded with who, when and why and
honoured by every link build: ``python -m stewardship``."""
from stewardship.decisions import DECISIONS, Decision, DecisionError, list_decisions, record_decision

__all__ = ["DECISIONS", "Decision", "DecisionError", "list_decisions", "record_decision"]
