"""coderflash engine: tokens, prompt formats, context assembly, backends, scheduling, chat."""

__version__ = "0.1.0"
