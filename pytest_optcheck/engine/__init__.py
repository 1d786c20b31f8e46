"""The check engine: trajectories, tolerances, the comparison, outcomes and every
sentence a user reads about them. Pure numpy (tolerance parsing: pure Python)."""
