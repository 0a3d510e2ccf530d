"""A tiny shop used by coderflash's quick start and tests."""
