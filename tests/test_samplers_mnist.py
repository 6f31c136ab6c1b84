"""The MNIST sampler script (noneq.scripts.samplers_mnist) at small size: the first 600 images,
SGLD and WOR + LM, and BlackJAX's SGLD against the library's; its stored results verified."""
import json

import numpy as np
import pytest

from noneq import store
from noneq.data import DataError
from noneq.scripts import samplers_mnist as script


def test_load_missing_says_how_to_regenerate(tmp_path):
    with pytest.raises(DataError, match="PROVENANCE.json: the file is missing.*python -m noneq.scripts.samplers_mnist"):
        script.load(tmp_path)


def test_script_small(tmp_path):
    assert script.main(["--small", "--out", str(tmp_path)]) == 0
    prov = json.loads((tmp_path / "PROVENANCE.json").read_text())
    assert tuple(prov) == store.FIELDS
    assert prov["command"] == f"python -m noneq.scripts.samplers_mnist --small --seed 0 --out {tmp_path}"
    assert prov["parameters"]["n_train"] == 600 and prov["parameters"]["algorithms"] == ["sgld", "sgld_wor_lm"]
    d = script.load(tmp_path)
    assert list(d["algorithms"]) == ["sgld", "sgld_wor_lm"] and d["M"] == 600 and d["m"] == 20
    # WOR + LM is far closer to the posterior than SGLD at the smallest eta of the grid
    assert d["kl"][1, 0] < d["kl"][0, 0] / 10
    # the stability bracket, and the learning rate of the BlackJAX comparison inside it
    assert np.all(d["stable_lo"] < d["stable_hi"]) and d["bj_eta"] == pytest.approx(0.1 * d["stable_lo"][0])
    assert np.all(d["seconds_per_unit"] > 0) and np.all(d["n_sim"] >= 2 * 20)
    # BlackJAX and the library sample the same variance along the 10 stiffest directions: the
    # mean over 2 x 2 replicas x 10 directions of 512 steps each (relative s.e. about 3%) is the
    # exact discrete SGLD variance within 10%
    assert d["bj_var_lib"].shape == d["bj_var_bj"].shape == (2, 10) and d["bj_steps"] == 2 ** 9
    ratio = np.concatenate([d["bj_var_lib"], d["bj_var_bj"]]).mean(axis=0) / d["bj_var_theory"]
    assert abs(ratio.mean() - 1) < 0.1, ratio
    assert np.all(np.isfinite(d["bj_z_var"])) and np.all(np.isfinite(d["bj_z_mean"]))
