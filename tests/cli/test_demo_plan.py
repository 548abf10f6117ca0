"""The demo's time plan: epochs from measured step times, saved and reused for the same demo."""

from __future__ import annotations

import json

import pytest

from medsight.cli.demo_plan import PLAN_FILE, DemoBudget, classify_epochs, segment_epochs

DEMO = {"cases": 300, "seed": 0}


def test_epochs_are_what_fits_the_seconds():
    # 180 training samples + 60 validation forwards (35% of a step) at 0.05 s a probed
    # sample (0.0575 s in the loop): 11.9 s an epoch
    assert classify_epochs(100.0, 0.05, 180, 60) == 8
    assert classify_epochs(1.0, 0.05, 180, 60) == 0
    # a slower machine fits proportionally fewer epochs
    assert classify_epochs(300.0, 0.10, 180, 60) < classify_epochs(300.0, 0.05, 180, 60)
    assert segment_epochs(60.0, 0.5, 50, 4.7) == 2


def test_a_saved_plan_is_reused_only_for_the_same_demo(tmp_path):
    first = DemoBudget(tmp_path, 10.0, DEMO, replan=False)
    assert not first.reused and first.left() > 0
    first.plan.slowdown = 1.7
    first.record("classification", {"epochs": 31, "voxel_budget": 160_000})
    saved = json.loads((tmp_path / PLAN_FILE).read_text())
    assert saved["sections"]["classification"]["epochs"] == 31 and saved["cpu"]

    again = DemoBudget(tmp_path, 10.0, DEMO, replan=False)
    assert again.reused and again.saved("classification")["epochs"] == 31
    assert again.plan.slowdown == 1.7
    assert not DemoBudget(tmp_path, 10.0, DEMO, replan=True).reused
    assert not DemoBudget(tmp_path, 10.0, {**DEMO, "cases": 60}, replan=False).reused
    assert DemoBudget(tmp_path, 10.0, DEMO, replan=False).saved("segmentation") is None


def test_a_broken_plan_file_means_a_new_plan(tmp_path):
    (tmp_path / PLAN_FILE).write_text("{not json")
    budget = DemoBudget(tmp_path, 10.0, DEMO, replan=False)
    assert not budget.reused and budget.saved("classification") is None


def test_fixed_sections_scale_with_the_time_data_generation_took(tmp_path):
    budget = DemoBudget(tmp_path, 10.0, DEMO, replan=True)
    sections = ["EHR", "segmentation evaluation"]
    here = budget.fixed_estimate(sections)
    budget.timed_synthesis(2 * 37.0, 300)  # twice the reference machine's 37 s
    assert budget.plan.fixed_slowdown == 2.0
    assert budget.fixed_estimate(sections) == pytest.approx(2 * here)
    budget.timed_synthesis(1000.0, 300)  # a stall while generating is not a 27x slower CPU
    assert budget.plan.fixed_slowdown == 4.0
