"""Report stage: what an ML lead reads (HTML, Markdown, PR comment) and what an analyst opens (TensorBoard)."""
