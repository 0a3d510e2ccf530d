"""Chat: conversations, the tool-calling session loop, repository tools."""
