import os

import torch

# Deterministic and quick on the 2-core machines.
torch.set_num_threads(min(2, os.cpu_count() or 1))
