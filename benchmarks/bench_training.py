"""asv: one training step of the MNIST ODE-Net and of the latent ODE (synthetic inputs, no data files)."""

from __future__ import annotations

import torch

from benchmarks import metrics

try:
    from nodebench.data.latent_spirals import SpiralConfig, make_spirals, observation_batch
except ImportError:  # asv also runs this suite on commits from before the module's rename
    from nodebench.data.spirals import SpiralConfig, make_spirals, observation_batch
from nodebench.models.latent import LatentODE
from nodebench.models.mnist import build_model


class MnistOdeNetStep(metrics.TimeSettings):
    timeout = 300

    def setup(self):
        torch.set_num_threads(1)
        torch.manual_seed(0)
        self.model = build_model("odenet")
        self.opt = torch.optim.SGD(self.model.parameters(), lr=0.1, momentum=0.9)
        self.x = torch.rand(32, 1, 28, 28)
        self.y = torch.randint(0, 10, (32,))

    def time_train_step(self):
        self.opt.zero_grad()
        torch.nn.functional.cross_entropy(self.model(self.x), self.y).backward()
        self.opt.step()


class LatentOdeStep(metrics.TimeSettings):
    timeout = 300

    def setup(self):
        torch.set_num_threads(1)
        torch.manual_seed(0)
        data = make_spirals(SpiralConfig(n_spirals=64), dtype=torch.float32)
        self.batch = observation_batch(data, 30)
        self.model = LatentODE()
        self.opt = torch.optim.Adam(self.model.parameters(), lr=0.01)

    def time_train_step(self):
        self.opt.zero_grad()
        self.model.loss(self.batch).backward()
        self.opt.step()
