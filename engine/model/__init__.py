"""The model: backends (llama.cpp in-process, OpenAI-compatible remote), prompt formats, tokens, chat template, KV snapshots, model resolution, synthetic GGUFs."""
