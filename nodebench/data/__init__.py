"""Data sets: MNIST fetch/verify/load (``nodebench.data.mnist``), the latent ODE's spiral data set
(``nodebench.data.latent_spirals``) and the demo spirals' trajectories (``nodebench.data.demo_spirals``:
the seed slides' Examples 1 and 2 and torchdiffeq's spiral demo)."""
