"""The RoleBasedGroup controller."""
