"""darknet's formulas in plain Python (standard library only): the rate, GPU 0's multi-GPU
batch counter and the step → batch position. Generated modules mirror these; the golden
tests keep the two equal."""
