"""The RoleBasedGroupScalingAdapter controller."""
