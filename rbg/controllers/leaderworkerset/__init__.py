"""LeaderWorkerSet controller and its admission webhooks."""
