"""`convsee serve`: a local page to draw a digit and watch every layer respond."""
