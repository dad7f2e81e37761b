"""Tableaus check themselves on construction; options are frozen; both stage stores meet one protocol."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from nodebench.solvers import ALL_SOLVERS
from nodebench.solvers.registry import METHODS
from nodebench.solvers.rk import StageStore, _Buffer, _List
from nodebench.solvers.tableaus import DOPRI5, RK4, Tableau, TableauError
from nodebench.solvers.validate import Options, check_options


def _fields(tab: Tableau) -> dict:
    return {f.name: getattr(tab, f.name) for f in dataclasses.fields(tab) if f.init}


def test_every_registered_tableau_passes_its_own_checks():
    for tab in ALL_SOLVERS.values():
        assert Tableau(**_fields(tab)) == tab


def test_wrong_row_sum_is_refused():
    a = list(DOPRI5.a)
    a[3] = (a[3][0] + 1e-3, *a[3][1:])
    with pytest.raises(TableauError, match=r"row 3 of a sums to .*, not c\[3\]"):
        Tableau(**{**_fields(DOPRI5), "a": tuple(a)})


def test_swapped_error_row_is_refused():
    f = _fields(DOPRI5)
    with pytest.raises(TableauError, match=r"sum\(b\) = .*not 1 \(b and b_err swapped\?\)"):
        Tableau(**{**f, "b": f["b_err"], "b_err": f["b"]})


def test_error_weights_must_sum_to_zero():
    f = _fields(DOPRI5)
    with pytest.raises(TableauError, match=r"sum\(b_err\)"):
        Tableau(**{**f, "b_err": tuple(x + 0.01 for x in f["b_err"])})


def test_weights_of_a_lower_order_are_refused():
    f = _fields(RK4)
    b = (f["b"][0] + 0.01, f["b"][1] - 0.01, *f["b"][2:])  # sums to 1, but only first order
    with pytest.raises(TableauError, match="not of order 4"):
        Tableau(**{**f, "b": b})


def test_inconsistent_dense_output_is_refused():
    f = _fields(DOPRI5)
    dense = [list(row) for row in f["dense"]]
    dense[2][1] += 1e-3
    with pytest.raises(TableauError, match="dense output"):
        Tableau(**{**f, "dense": tuple(tuple(r) for r in dense)})
    with pytest.raises(TableauError, match="dense has 6 rows, needs 7"):
        Tableau(**{**f, "dense": f["dense"][:6]})


def test_non_finite_coefficients_are_refused():
    with pytest.raises(TableauError, match="finite"):
        Tableau(**{**_fields(RK4), "b": (math.nan, 3 / 8, 3 / 8, 1 / 8)})


def test_construction_is_by_keyword_only():
    with pytest.raises(TypeError):
        Tableau("x", 1, (0.0,), ((),), (1.0,), None, ((1.0,),), 1)  # type: ignore[misc]


def test_fsal_is_derived_not_given():
    assert {n for n, t in ALL_SOLVERS.items() if t.fsal} == {"bosh3", "dopri5", "tsit5", "dopri8"}
    with pytest.raises(TypeError):
        Tableau(**_fields(RK4), fsal=True)  # type: ignore[call-arg]


def test_options_are_a_frozen_object():
    opts = check_options({"safety": 0.8}, METHODS["dopri5"], torch.float32)
    assert isinstance(opts, Options) and opts.safety == 0.8
    assert opts.t_eps == torch.finfo(torch.float32).eps and opts.t_dtype == torch.float32
    with pytest.raises(dataclasses.FrozenInstanceError):
        opts.safety = 0.5  # type: ignore[misc]


def test_both_stage_stores_meet_the_protocol():
    y0 = torch.ones(3)
    members = [m for m in vars(StageStore) if not m.startswith("_")]
    for store in (_Buffer(DOPRI5, y0, y0.shape), _List(DOPRI5, y0, y0.shape)):
        for m in members:
            assert callable(getattr(store, m)), (type(store).__name__, m)
