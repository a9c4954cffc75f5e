"""The Gradio web UI: one module per tab, each with ``render(services)``; handlers make one service call."""
