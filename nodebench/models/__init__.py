"""nn.Modules: MNIST classifiers and the ODE block (`nodebench.models.mnist`), latent ODE models."""
