"""Hook sites on every adapter family: no-op identity, head zeroing by hand, cleanup."""

import pytest
import torch

from babelscope.errors import UsageError
from babelscope.models.head_mask import head_mask_hooks
from babelscope.models.hooks import get_act_name, hooks
from babelscope.testing import SAMPLE_TEXTS


def _inputs(tok):
    return tok(SAMPLE_TEXTS[:3], return_tensors="pt", padding=True)


def _n_hooks(model):
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def test_noop_hooks_leave_logits_bit_identical(tiny_loaded, family):
    loaded = tiny_loaded(family)
    batch = _inputs(loaded.tokenizer)
    with torch.no_grad():
        ref = loaded.model(**batch).logits
        sites = {get_act_name(kind, i): (lambda t, s: None) for i in range(loaded.adapter.n_layers)
                 for kind in ("z", "attn_out", "pre", "post", "mlp_out", "resid_post")}
        if loaded.adapter.mlp_kind != "ungated":
            sites["blocks.0.mlp.hook_pre_linear"] = lambda t, s: None
        with hooks(loaded.model, sites):
            out = loaded.model(**batch).logits
        ident = {s: (lambda t, _s: t.clone()) for s in sites}
        with hooks(loaded.model, ident):
            out2 = loaded.model(**batch).logits
    assert torch.equal(ref, out)
    assert torch.equal(ref, out2)


def test_all_ones_head_mask_is_identity(tiny_loaded, family):
    loaded = tiny_loaded(family)
    batch = _inputs(loaded.tokenizer)
    a = loaded.adapter
    with torch.no_grad():
        ref = loaded.model(**batch).logits
        with hooks(loaded.model, head_mask_hooks(torch.ones(a.n_layers, a.n_heads), a)):
            out = loaded.model(**batch).logits
    assert torch.equal(ref, out)


@pytest.mark.parametrize("head", [0, 3])
def test_zeroing_query_head_equals_zeroing_o_proj_slice_by_hand(tiny_loaded, family, head):
    loaded = tiny_loaded(family)
    a = loaded.adapter
    batch = _inputs(loaded.tokenizer)
    mask = torch.ones(a.n_layers, a.n_heads)
    mask[1, head] = 0.0

    def by_hand(module, args):
        z = args[0].clone()
        z[..., head * a.head_dim:(head + 1) * a.head_dim] = 0.0
        return (z,)

    with torch.no_grad():
        with hooks(loaded.model, head_mask_hooks(mask, a)):
            masked = loaded.model(**batch).logits
        handle = a.o_proj(a.layer(loaded.model, 1)).register_forward_pre_hook(by_hand)
        try:
            manual = loaded.model(**batch).logits
        finally:
            handle.remove()
        ref = loaded.model(**batch).logits
    assert torch.allclose(masked, manual, atol=1e-6, rtol=0)
    assert not torch.allclose(masked, ref)


def test_mlp_sites_see_the_right_widths(tiny_loaded, family):
    loaded = tiny_loaded(family)
    seen = {}

    def record(t, s):
        seen[s] = t.shape

    sites = {s: record for s in ("blocks.1.mlp.hook_pre", "blocks.1.mlp.hook_post", "blocks.1.hook_resid_post")}
    with torch.no_grad(), hooks(loaded.model, sites):
        loaded.model(**_inputs(loaded.tokenizer))
    d_mlp, d_model = loaded.adapter.d_mlp, loaded.adapter.d_model
    assert seen["blocks.1.mlp.hook_pre"][-1] == d_mlp
    assert seen["blocks.1.mlp.hook_post"][-1] == d_mlp
    assert seen["blocks.1.hook_resid_post"][-1] == d_model


def test_hooks_removed_even_when_body_raises(tiny_loaded):
    loaded = tiny_loaded("llama")
    before = _n_hooks(loaded.model)
    with pytest.raises(RuntimeError, match="boom"):
        with hooks(loaded.model, {"blocks.0.attn.hook_z": lambda t, s: None,
                                  "blocks.1.mlp.hook_post": lambda t, s: None}):
            assert _n_hooks(loaded.model) == before + 2
            raise RuntimeError("boom")
    assert _n_hooks(loaded.model) == before


@pytest.mark.parametrize("site", ["blocks.0.attn.hook_q", "blocks.9.attn.hook_z", "layers.0.mlp"])
def test_unknown_site_raises_and_registers_nothing(tiny_loaded, site):
    loaded = tiny_loaded("llama")
    before = _n_hooks(loaded.model)
    with pytest.raises(UsageError):
        with hooks(loaded.model, {"blocks.0.attn.hook_z": lambda t, s: None, site: lambda t, s: None}):
            pass
    assert _n_hooks(loaded.model) == before


def test_replacement_changes_output(tiny_loaded):
    loaded = tiny_loaded("qwen2")
    batch = _inputs(loaded.tokenizer)
    with torch.no_grad():
        ref = loaded.model(**batch).logits
        with hooks(loaded.model, {"blocks.0.mlp.hook_post": lambda t, s: torch.zeros_like(t)}):
            out = loaded.model(**batch).logits
    assert not torch.allclose(ref, out)
