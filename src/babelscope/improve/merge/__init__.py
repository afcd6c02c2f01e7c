"""Streaming model merges: recipe -> per-tensor plan -> one tensor at a time -> sharded safetensors.

* ``recipe.py``: the mergekit-style YAML recipe and its parameter rules (gradients, filters);
* ``methods.py``: the tensor-level methods (passthrough, linear, task_arithmetic, ties), each a
  keyword-built ``MethodSpec``;
* ``layer_swap.py``: Layer Swapping and revert, expanded into ``linear`` slices (and mergekit YAML);
* ``plan.py``: recipe -> one ``TensorOp`` per output tensor (mergekit 0.1.5's layout rules);
* ``execute.py``: the plan -> sharded safetensors, one tensor at a time; ``merge()``;
* ``io.py``: lazy safetensors reads and the streaming shard writer;
* ``before_after.py``: model labels and the headline table of ``merge --evaluate``.

    from babelscope.improve.merge import merge
    merge({"merge_method": "linear", "models": [...]}, "out/merged")
"""

from babelscope.improve.merge.before_after import headline_table, model_labels
from babelscope.improve.merge.execute import merge, model_card, write_config_and_tokenizer
from babelscope.improve.merge.layer_swap import expand_layer_swap, expand_revert, layers_from_json, to_mergekit_yaml
from babelscope.improve.merge.methods import METHODS, MethodSpec, get_method
from babelscope.improve.merge.plan import MergePlan, TensorOp, plan_merge, prepare
from babelscope.improve.merge.recipe import Recipe, Slice, Source, load_recipe, parse_recipe

# execute(plan, out_dir) is babelscope.improve.merge.execute.execute (the submodule keeps its name)
__all__ = [
    "METHODS", "MergePlan", "MethodSpec", "Recipe", "Slice", "Source", "TensorOp", "expand_layer_swap", "expand_revert",
    "get_method", "headline_table", "layers_from_json", "load_recipe", "merge", "model_card", "model_labels",
    "parse_recipe", "plan_merge", "prepare", "to_mergekit_yaml", "write_config_and_tokenizer",
]
