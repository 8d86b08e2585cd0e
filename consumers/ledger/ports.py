"""What the ledger needs from storage: the settlement store over cash accounts."""

from __future__ import annotations

from consumers.common.settle import SettlementStore
from consumers.ledger.decisions import CashAccount, CashDecision

LedgerStore = SettlementStore[CashAccount, CashDecision]
