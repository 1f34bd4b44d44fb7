"""RoleInstanceSet: instances of several heterogeneous components, each run as StatefulSets (D42)."""
