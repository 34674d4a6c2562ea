"""The paper's sequential task in LIBERO-Goal's kitchen: open the top drawer, pick up the black bowl (inside it),
place it on the table, close the drawer; four atomic instructions run in order (docs/libero.md, "The
instruction chain"). `stages`: the chain as data (instructions, predicates, experts, budgets); `starts`: the
chain's initial states (built by our experts, cached); `rollout`: running the chain and the experts' table;
`demos`: chained demonstrations, one demo file per stage. Importing this package needs no simulator.
"""
from roboact.sim.chain.stages import STAGES, Stage, chain_budget

__all__ = ["STAGES", "Stage", "chain_budget"]
