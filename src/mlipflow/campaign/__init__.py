"""Active-learning campaigns: the campaign file, the loop, convergence, and the nightly controller."""
