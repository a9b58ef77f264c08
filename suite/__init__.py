"""The suite: five real-world deep-learning use cases as Keras tasks.

The shared core is deliberately small: `task` (the contract a task module fills
in), `config` (typed recipes and `--set` overrides), `data` (tf.data and image
helpers), `trainer` (compile + fit under a tf.distribute strategy), `metrics`,
`export` (atomic SavedModel export) and `cli`. The core never imports `tasks`;
only the CLI reads the registry.
"""

import os

# TensorFlow's C++ start-up chatter (CUDA probing on CPU-only hosts) hides the
# messages users need; keep warnings and errors. Users can still override it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# TensorFlow's pooling (BFC) allocator for CPU tensors, instead of malloc: a training step's large
# activations (a U-Net's are tens of MB each) otherwise come from fresh mmap pages every step, and the
# kernel zeroes them (bench/run.py allocator: cell_microscopy training 0.82x the wall time, system time
# 29 s -> 4 s; a detector's 1.03x, no gain; the same metrics either way). It must be set before TensorFlow
# starts, so `import suite` first. Its default limit is 64 GiB (TF_CPU_BFC_MEM_LIMIT_IN_MB); memory it
# pools is not given back while the process lives. TF_CPU_ALLOCATOR_USE_BFC=false turns it off.
os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")

__version__ = "0.1.0"
