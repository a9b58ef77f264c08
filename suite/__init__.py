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
# TensorFlow's pooling (BFC) allocator for CPU tensors instead of malloc, which hands a step's large
# activations out as fresh pages the kernel must zero every step (README, "Distributed training"; measured
# in docs/benchmarks.md, "CPU allocator"). Read when TensorFlow starts, so `import suite` comes first.
os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")

__version__ = "0.1.0"
