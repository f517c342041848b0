"""Training past one process: the same project under torchrun with DistributedDataParallel.

`world` (who this process is, the few collectives the loop needs), `ddp` (wrapping and re-wrapping the trained
module, the samplers that shard the data), `worker` (a torchrun worker's life: join, train, report a failure
with its rank, leave), `launch` (``python main.py train --nproc-per-node N``: torchrun started in-process).
"""
