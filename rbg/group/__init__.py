"""Pure desired-state logic of a RoleBasedGroup: names, templates, workloads, discovery, order, status.

No I/O here: every function maps plain data (the RBG and observed children) to plain data.
"""
