"""Translation targets in torch: the exact scheduler, native compositions, the optimizer."""
