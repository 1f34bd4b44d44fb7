"""Coordination of roles: batch placement (AffinityScheduling) and its pod webhook."""
