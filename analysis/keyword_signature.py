"""The models as TFMA loads them, with signatures it can call without TensorFlow's costly detour.

TFMA calls a signature that takes serialized examples positionally:
`signature(batch)`. A loaded SavedModel signature binds keywords only, so
TensorFlow first fails to bind, formats an error message holding the repr of
the whole batch of serialized examples, and only then falls back to the call
that works. That error text alone took about 0.1 ms per example (5 s of a
50,000-example analysis). Here the same loaded signature is called with its
one input by name; the model, its weights and what it computes are untouched.
"""

from __future__ import annotations

import functools


class KeywordSignature:
    """A loaded signature with a single input, callable with that input positionally."""

    def __init__(self, signature):
        self._signature = signature
        self.structured_input_signature = signature.structured_input_signature
        (self._input_name,) = signature.structured_input_signature[1]

    def __call__(self, *args, **kwargs):
        if len(args) == 1 and not kwargs:
            return self._signature(**{self._input_name: args[0]})
        return self._signature(*args, **kwargs)

    def __getattr__(self, name: str):
        return getattr(self._signature, name)


class KeywordModel:
    """The loaded model, its single-input signatures wrapped; everything else is the model's own."""

    def __init__(self, model):
        self._model = model
        self.signatures = {
            name: KeywordSignature(signature) if _single_input(signature) else signature
            for name, signature in model.signatures.items()
        }

    def __getattr__(self, name: str):
        return getattr(self._model, name)


def _single_input(signature) -> bool:
    spec = getattr(signature, "structured_input_signature", None)
    return bool(spec) and len(spec) == 2 and isinstance(spec[1], dict) and len(spec[1]) == 1 and not spec[0]


def _load_wrapped(construct_fn):
    model = construct_fn()
    return KeywordModel(model) if hasattr(model, "signatures") else model


def with_keyword_signatures(shared_model):
    """The EvalSharedModel `tfma.default_eval_shared_model` made, loading through `KeywordModel`."""
    from tensorflow_model_analysis.api import types

    loader = shared_model.model_loader
    wrapped = types.ModelLoader(construct_fn=functools.partial(_load_wrapped, loader.construct_fn), tags=loader.tags)
    return shared_model._replace(model_loader=wrapped)
