"""Behaviour cloning on frozen encoders in simulation: the paper's policy-learning benchmark (Tables II, III).

    encoders.py  FrozenObsEncoder: RoboAct-CLIP (streaming window), frozen backbone alone, CLIP, R3M, (MPI);
                 a vector per step, or tokens (RoboAct's TDT states, the backbone's window of frames)
    bc.py        BCPolicy: BatchNorm + MLP(256, 256) on [embedding; proprio], MSE (the R3M / MPI harness);
                 token inputs attention-pooled first (Voltron's MAP)
    data.py      demos -> (embedding, proprio, action) per step, encoder features cached in safetensors
    runner.py    EnvRunner(cfg).run(agent) -> dict over fixed initial states, with rollout videos
    train.py     BC training with evaluation rollouts: best and final success
    benchmark.py rows x tasks x seeds, expert pre-check, resumable cells -> report.py tables and chart
    cli.py       `roboact policy`

Simulators are imported only inside functions (they are the optional `roboact[sim]` extra).
"""
