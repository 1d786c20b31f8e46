"""Running and recording a run: the reference loop (:mod:`.train`), the calling
conventions it follows, the Recorder (:mod:`.record`), the description of a recorded run,
and the replicas of ``calibrate=N``. Each ends in a Trajectory."""
