"""Pure core of RoleBasedGroupSets."""
