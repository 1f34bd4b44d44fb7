"""Lifecycle arithmetic shared by every kind that rolls, scales or recreates: LeaderWorkerSet groups,
RoleBasedGroup roles and RoleBasedGroupSet groups (pure: plain data in, numbers out)."""
