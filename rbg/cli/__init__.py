"""The `rbg` command line (also installed as the kubectl plugin `kubectl-rbg`)."""
