"""The checks: against a golden file, and the sensitivity probe. Plain functions over
the run side, the engine and the golden store; no pytest."""
