"""``edgeprune gate``: check bench results against a policy of budgets (docs/gate.md)."""
