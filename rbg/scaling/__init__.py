"""Pure core of RoleBasedGroupScalingAdapters."""
