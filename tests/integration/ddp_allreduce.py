"""A tiny DDP check run under torchrun: every process all-reduces (rank + 1) over gloo and
prints what it got, so the test can check every rank of the world took part."""
import os

import torch
import torch.distributed as dist

dist.init_process_group("gloo")
rank, world = dist.get_rank(), dist.get_world_size()
t = torch.tensor([float(rank + 1)])
dist.all_reduce(t)
print(f"ddp rank={rank} world={world} local={os.environ['LOCAL_RANK']} sum={int(t.item())}",
      flush=True)
dist.barrier()
dist.destroy_process_group()
