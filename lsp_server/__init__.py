"""coderflash language server and command line (thin: translates LSP and CLI calls to the engine)."""
