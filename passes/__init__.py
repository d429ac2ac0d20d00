"""tflopt's built-in passes. Importing a module registers its passes with the pass manager."""
from . import cleanup  # noqa: F401
from . import quantize  # noqa: F401
from . import dequantize  # noqa: F401
from . import prune, cluster, sparsify  # noqa: F401
from . import audit  # noqa: F401
from . import recover  # noqa: F401
from . import static_shapes  # noqa: F401
from . import equalize  # noqa: F401
