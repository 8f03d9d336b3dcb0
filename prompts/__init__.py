"""Prompt templates of the LLM operators, as package data (Markdown files with {{placeholders}})."""
