"""The variants table: each variant's switches identify it again, and the names tables print (committed in
docs/results JSON) stay what they were."""
import pytest

from roboact.models.variants import VARIANTS, describe, policy_role, policy_tables, variant_of

from .conftest import small_config


@pytest.mark.parametrize("vid", list(VARIANTS))
def test_a_variants_switches_identify_it(vid):
    cfg = small_config(**VARIANTS[vid].overrides)
    assert variant_of(cfg) is VARIANTS[vid]
    assert policy_role("roboact", cfg) == VARIANTS[vid].policy_role


def test_names_and_tables_as_published():
    assert [(v.id, v.row_name) for v in VARIANTS.values()] == [
        ("full", "RoboAct-CLIP"), ("no_temporal", "ablation 1 (no temporal)"),
        ("no_disentangle", "ablation 2 (no disentanglement)"), ("frozen_baseline", "frozen backbone (mean-pool)")]
    assert policy_role("backbone") == "frozen backbone" and policy_role("r3m") == "baseline"
    assert {r: policy_tables(r) for r in ("frozen backbone", "baseline", "RoboAct-CLIP",
                                          "ablation 1 (no temporal)", "ablation 2 (no disentanglement)",
                                          "frozen-backbone heads (mean-pool)")} == {
        "frozen backbone": ["II"], "baseline": ["II"], "RoboAct-CLIP": ["II", "III"],
        "ablation 1 (no temporal)": ["III"], "ablation 2 (no disentanglement)": ["III"],
        "frozen-backbone heads (mean-pool)": ["II"]}


def test_describe_names_every_combination():
    assert describe(small_config()) == "full"
    assert describe(small_config(temporal=False)) == "no temporal"
    assert describe(small_config(temporal=False, disentangle=False)) == "no temporal, no disentanglement"
    assert describe(small_config(fusion="meanpool", disentangle=False)).startswith("frozen-backbone baseline")
    # both ablation switches off is not a named variant: the policy tables file it under ablation 1
    assert variant_of(small_config(temporal=False, disentangle=False)) is VARIANTS["no_temporal"]
