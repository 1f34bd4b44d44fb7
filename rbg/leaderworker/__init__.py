"""Pure core of the LeaderWorkerSet controller: names, validation, desired objects, pod mutation,
rolling-update math, restart decisions and status. No I/O."""
