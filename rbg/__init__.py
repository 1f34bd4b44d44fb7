"""rbg: a RoleBasedGroup operator for multi-role LLM inference services on Kubernetes."""

__version__ = "0.1.0"
