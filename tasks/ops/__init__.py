"""Tasks of the ops flows (flows/ops/): the actions, and corrections of published items."""
