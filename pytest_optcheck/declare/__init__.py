"""Declaring a run: the markers become a :class:`~.spec.Spec` (plain Python), whose names
the catalog resolves and :mod:`.build` turns into a seeded model, optimizer, scheduler and
data. Only :mod:`.build` and the built-in problems import torch."""
