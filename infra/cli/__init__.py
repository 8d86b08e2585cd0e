"""The operator CLI (`ledgerflow ...`): replay, rebuild, dead letters, lag, reconcile, topics."""
