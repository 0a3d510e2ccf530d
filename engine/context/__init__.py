"""Repository context: what goes in front of the cursor, to a token budget, with secrets redacted."""
