import torch

# The tests use small tensors, for which intra-op threads cost more than they give (and stall badly on a
# loaded 2-core machine). Tests that need threads set them themselves.
torch.set_num_threads(1)
