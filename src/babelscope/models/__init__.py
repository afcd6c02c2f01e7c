"""Model loading, architecture adapters, hook sites and streaming reducers."""

from babelscope.models.load import LoadedModel, load_model, load_tokenizer, parse_model_args

__all__ = ["LoadedModel", "load_model", "load_tokenizer", "parse_model_args"]
