"""The checks: against a golden file (:mod:`.golden_check`), the sensitivity probe, and
the checks without goldens (:mod:`.differential`). Plain functions over the declared run,
the run side, the engine and the golden store; no pytest."""
