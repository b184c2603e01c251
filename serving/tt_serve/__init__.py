"""Local inference (PRODUCT.md §15): the model runtime, the OpenAI-compatible server, managed mode, export.

Modules run by the runtime interpreter (`runtime`, `completions`, `json_output`, `server`, `export`) import
only the standard library, the runtime's packages (torch, transformers, peft) and pure helpers of
tt_core and tt_trainer, so a bare `setup-runtime` environment can run them with PYTHONPATH set.
"""
