"""The RoleBasedGroupSet controller."""
