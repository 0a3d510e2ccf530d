"""Inference: the scheduler that owns the model thread, completion runtime, caching, post-processing, code actions."""
