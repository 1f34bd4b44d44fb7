"""RoleInstanceSet controller (D42)."""
