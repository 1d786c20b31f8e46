"""The golden store: the file format, where goldens live, the one atomic write, the
recorded environment, and which goldens are orphans."""
