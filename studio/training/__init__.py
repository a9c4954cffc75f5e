"""LoRA training: dataset checks, the persistent job queue, the peft trainer and the worker process.

Import cost: :mod:`~studio.training.config`, :mod:`~studio.training.datasets`, :mod:`~studio.training.queue`,
:mod:`~studio.training.buckets`, :mod:`~studio.training.quality` and :mod:`~studio.training.supervisor`
are light (no torch); :mod:`~studio.training.trainer`, :mod:`~studio.training.families` and
:mod:`~studio.training.worker` import torch, diffusers and peft.
"""
