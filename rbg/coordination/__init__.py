"""Pure core of role coordination: validation, batch math, and the capacity-aware placement planner."""
