"""The run side: a spec (markers) becomes a built model, optimizer, scheduler and data,
trained or recorded into a Trajectory. The only layer that imports torch."""
