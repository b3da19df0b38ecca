"""AgenticAI Framework: the ``communication`` subpackage holds one async client per protocol."""
