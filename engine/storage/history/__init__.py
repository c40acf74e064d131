"""History: the diff of a run (pure), recording it, reading it back, and retention."""
