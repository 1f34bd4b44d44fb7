"""Generic controller runtime: informers, cache, work queue, leader election, metrics, webhooks.

Nothing in this package knows about RoleBasedGroups.
"""
