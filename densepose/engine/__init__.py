"""Training: config, optimisers and schedules, checkpoints, distributed, the loop.

Command line::

    densepose train --config configs/light_synth.yaml --data DATA --out runs/light [key.sub=value ...]
    densepose train --config configs/light_synth.yaml --out runs/light --resume     # continue exactly
    densepose train --config configs/light_synth.yaml --data DATA --out runs/ft --weights densepose/assets/model_light.pt
    torchrun --nproc_per_node 8 -m densepose.cli.main train --config configs/r50_fpn_synth.yaml --data DATA

Python::

    from densepose.engine import load_config, train
    cfg = load_config("configs/light_synth.yaml", ["data.root=DATA", "solver.max_iter=500"])
    model = train(cfg)

Run folder (``cfg.out``): ``config.yaml`` (the resolved config), ``log.txt``, ``metrics.jsonl``
(one record per ``log_period`` iterations, plus ``eval/...`` records), ``metrics.csv`` (training
columns), ``tb/`` (TensorBoard, when installed), ``model_XXXXXXX.pt`` checkpoints (the newest
``keep_checkpoints``) and ``last_checkpoint`` naming the newest one. The folder is created only
after the data, the ``--weights`` model file and the checkpoint to resume have been read and
checked; a new run in it first removes the temporary files of a killed one, and a torn last
metrics record is dropped on resume.

Fine-tuning (``weights``, ``--weights``): the model is built from the config and starts from the
weights of a model file, which must fit it exactly (checked before anything is written).
Checkpoints and model files are read as data (``weights_only=True``), never as code.

Exact resume: a checkpoint holds model, optimizer, scaler, RNG states of every rank, the number
of samples consumed and the iteration; the learning rate is a function of the iteration and the
data order (and each sample's augmentation) a function of (seed, samples consumed), so a resumed
run repeats the uninterrupted one bit for bit on CPU (with ``deterministic=true`` when torch
uses more than one thread). Resume with the same number of processes and ``ims_per_batch``.
"""
from densepose.engine.config import TrainConfig, load_config
from densepose.engine.train import train

__all__ = ["TrainConfig", "load_config", "train"]
