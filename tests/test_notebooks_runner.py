"""The papermill runner: declared parameters only, profiles, and the whole series with overrides.

The slow test executes every notebook through ``run_notebooks`` (papermill, kernel
python3) from another working directory, with overridden parameters, and checks the
metrics JSON each notebook writes for the overrides and for sane values.
"""

from __future__ import annotations

import math
import os

import pytest

from mcrl_kit import cli
from mcrl_kit.errors import KitError
from mcrl_kit.notebooks import (
    _compatible,
    declared_parameters,
    find_notebooks,
    full_parameter,
    parse_value,
    readme_section,
    resolve_parameters,
    run_notebooks,
    select,
    update_readme,
)


def test_parse_value():
    assert parse_value("2000") == 2000 and parse_value("0.5") == 0.5
    assert parse_value("[0, 1]") == [0, 1] and parse_value("None") is None and parse_value("true") is True
    assert parse_value("sasrec") == "sasrec" and parse_value("/tmp/x.csv") == "/tmp/x.csv"


def test_select():
    assert [nb.number for nb in select("05,3")] == ["03", "05"]
    assert [nb.number for nb in select(["07_inspector"])] == ["07"]
    assert len(select(None)) == len(find_notebooks()) == 9
    with pytest.raises(KitError, match="not a notebook"):
        select("19")


def test_undeclared_parameter_is_refused_with_the_declared_list():
    with pytest.raises(KitError) as err:
        resolve_parameters(select("03"), overrides={"STEP": 10})
    msg = str(err.value)
    assert "'STEP'" in msg and "STEPS" in msg and "BACKBONE" in msg and "OUT_DIR" in msg
    # a name only some selected notebooks declare goes to those
    params = resolve_parameters(select("01,03"), overrides={"STEPS": 10, "EXAMPLES": 3})
    assert params == {"01": {"EXAMPLES": 3}, "03": {"STEPS": 10}}


def test_values_of_another_type_are_refused():
    with pytest.raises(KitError, match="declares STEPS = 200"):
        resolve_parameters(select("03"), overrides={"STEPS": "many"})
    with pytest.raises(KitError, match="SEEDS"):
        resolve_parameters(select("06"), overrides={"SEEDS": 3})
    assert resolve_parameters(select("03"), overrides={"LR": 1, "THREADS": None})["03"] == {"LR": 1, "THREADS": None}


def test_full_profile_sets_real_sizes():
    params = resolve_parameters(select("01,03,06"), profile="full")
    assert params["03"]["BACKBONE"] == "sasrec" and params["03"]["STEPS"] >= 10_000 and params["03"]["SCALE"] == "retailrocket"
    assert len(params["06"]["SEEDS"]) == 3 and "STEPS" not in params["01"]
    with pytest.raises(KitError, match="unknown profile"):
        resolve_parameters(select("03"), profile="huge")


def test_full_profile_resolves_for_every_notebook():
    """Each notebook's full values (its parameters cell's metadata) are declared parameters of the declared types."""
    params = resolve_parameters(select(None), profile="full")
    assert list(params) == list(find_notebooks())
    for number, values in params.items():
        declared = declared_parameters(find_notebooks()[number].path)
        assert values, f"notebook {number} has no full-profile values"
        for name, value in values.items():
            assert name in declared and _compatible(declared[name], value), (number, name, value)
    assert params["01"] == {"SCALE": "retailrocket"} and params["02"]["SCALE"] == "retailrocket"
    assert params["08"]["SCALE"] == "small" and params["08"]["SEEDS"] == [0, 1, 2]
    assert params["05"]["ROLLOUTS"] == 64 and params["06"]["NEGATIVES"] == [1, 5, 10, 20]
    assert full_parameter("2", "SCALE") == "retailrocket"  # what `demo --profile full` simulates
    with pytest.raises(KitError, match="no full-profile value of ROLLOUTS"):
        full_parameter("02", "ROLLOUTS")
    # overrides still win over the profile
    assert resolve_parameters(select("03"), "full", {"STEPS": 10})["03"]["STEPS"] == 10


def test_cli_refuses_undeclared_parameter(capsys):
    code = cli.main(["notebooks", "--only", "03", "-p", "STEPZ", "10"])
    err = capsys.readouterr().err
    assert code == 2 and "STEPZ" in err and "STEPS" in err and "Traceback" not in err


def test_readme_section(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# kit\n\nintro\n\n<!-- notebooks:start -->\nSTALE TABLE\n<!-- notebooks:end -->\n\n## Later\n")
    update_readme({nb: 60.0 * i for i, nb in enumerate(find_notebooks(), 1)}, "CMD", readme)
    text = readme.read_text()
    assert text.startswith("# kit\n\nintro\n\n<!-- notebooks:start -->") and text.endswith("<!-- notebooks:end -->\n\n## Later\n")
    assert "STALE TABLE" not in text and "| 03 | [`03_baselines`](notebooks/03_baselines.ipynb) |" in text and "| 3.0 |" in text
    assert "`CMD`" in text and "`make lab`" in text and "-p STEPS 2000" in text
    assert "| – |" in readme_section({"01": 30}, "x")
    assert "| Baselines: supervised, SQN and SA2C |" in text  # what it teaches: the notebook's heading


@pytest.mark.slow
def test_series_through_the_runner_with_overrides(tmp_path, monkeypatch):
    """Every notebook, executed by papermill from an unrelated working directory, with overrides."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    out = tmp_path / "out"
    overrides = {"STEPS": 60, "EVAL_EVERY": 30, "EXAMPLES": 3, "WITH_SAMPLE": False, "TOP_K": 3}
    done = run_notebooks(None, "smoke", overrides, out, log=lambda *a: None)
    series = find_notebooks()
    assert [e.notebook.number for e in done] == list(series)
    assert list(elsewhere.iterdir()) == []  # nothing written relative to the working directory
    m = {e.notebook.number: e.metrics for e in done}
    for number, metrics in m.items():
        assert metrics["notebook"] == series[number].name
        assert metrics["parameters"]["OUT_DIR"] == str(out.resolve())
        assert (out / f"{series[number].name}.ipynb").exists()
    figures = os.environ["MCRL_FIGURES"]
    assert os.path.exists(os.path.join(figures, "05_bias_by_step.png"))

    # 01: three examples, returns discounted from the rewards (G_t ≥ r_t, the last one equal)
    assert m["01"]["parameters"]["EXAMPLES"] == 3 and len(m["01"]["examples"]) == 3
    g, r = m["01"]["example_returns"], m["01"]["example_rewards"]
    assert all(gi >= ri - 1e-6 for gi, ri in zip(g, r)) and math.isclose(g[-1], r[-1], rel_tol=1e-6)
    assert m["01"]["transitions"] > 0

    # 02: the sample row left out, the split adds up
    assert m["02"]["datasets"] == ["simulator (tiny)"]
    assert sum(row["sessions"] for row in m["02"]["split"]) == m["02"]["stats"]["sessions"] == 2000
    assert 3 <= m["02"]["mean_length"] < 20 and 0 < m["02"]["top_item_share"] < 0.5

    # 03/04: the overridden budget, sane metrics, MCRL smaller than SQN
    for number in ("03", "04", "05", "06", "07"):
        assert m[number]["parameters"]["STEPS"] == 60
    for number in ("03", "04"):
        for label, row in m[number]["results"].items():
            assert 0 < row["purchase NDCG@10"] <= 1 and 0 < row["click NDCG@10"] <= 1, (number, label)
    assert set(m["03"]["results"]) == {"supervised", "SQN", "SA2C"}
    assert m["04"]["params"]["MCRL"] < m["04"]["params"]["SQN"]
    assert m["04"]["results"]["SQN"] == m["03"]["results"]["SQN"]  # the same run, reused
    confusion = m["04"]["reward_confusion"]
    assert sum(confusion["negative"].values()) > 0
    assert all(-1 <= v <= 1 for v in m["04"]["transition_cosines"].values())
    assert all(math.isfinite(v) for v in m["04"]["final_losses"].values())

    # 05: finite, bounded bias for the four learners; truth available on the simulator
    assert set(m["05"]["mean_bias"]) == {"SQN", "SA2C", "MCRL", "MCRL − conservative"}
    for row in m["05"]["summary"]:
        assert abs(row["mean_bias"]) < 5 and abs(row["mean_bias_true"]) < 5 and row["events"] == m["05"]["events"] > 0

    # 06: two seeds per configuration, mean ± std
    for group in ("components", "negatives", "gammas"):
        for label, row in m["06"][group].items():
            assert row["seeds"] == 2 and row["purchase NDCG@10 std"] >= 0 and 0 < row["purchase NDCG@10"] <= 1, label
    assert set(m["06"]["negatives"]) == {"K = 1", "K = 10"}

    # 07: the purchase filter ran through the callback; the title names the session shown
    assert m["07"]["sessions"] > 0 and m["07"]["steps"] >= 1
    assert m["07"]["title"].startswith(f"session {m['07']['session']}:") and "purchase" in m["07"]["title"]
    assert all(math.isfinite(v) for v in m["07"]["mean_bias"].values())
    assert all(1 <= v <= 300 for v in m["07"]["mean_rank"].values())

    # 09: the equal-budget study at the overridden steps; intervals against a non-RL reference and the control
    assert len(m["09"]["results"]) == len(m["09"]["budget"]) == len(declared_parameters(series["09"].path)["ALGOS"])
    trained = {a: b for a, b in m["09"]["budget"].items() if a not in ("popularity", "recency")}
    assert len({b["trials"] for b in trained.values()}) == 1  # the same budget for every searched method
    assert all(b["steps"] <= b["trials"] * 60 for b in trained.values())

    # make site: the executed copies of this run rendered to static HTML (no third execution), then read in a browser
    from mcrl_kit.site import render_site

    index = render_site(out, tmp_path / "site")
    pages = sorted(p.name for p in index.parent.glob("*.html") if p.name != "index.html")
    assert pages == [f"{nb.name}.html" for nb in series.values()]
    text = index.read_text()
    assert all(f"href='{p}'" in text for p in pages)
    inspector = (index.parent / "07_inspector.html").read_text()
    assert "static snapshot of the inspector" in inspector and "VBox(" not in inspector
    assert "data:image/png;base64" in (index.parent / "05_overestimation.html").read_text()  # figures embedded
    _site_in_browser(index, pages)


def _site_in_browser(index, pages):
    """Each page of the site opens in headless Chromium without a page error; a screenshot of each goes to build/."""
    import shutil

    from mcrl_kit import paths

    chromium = shutil.which("chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        chromium = None
    if chromium is None:
        if os.environ.get("MCRL_REQUIRE_BROWSER") == "1":
            pytest.fail("MCRL_REQUIRE_BROWSER=1 but chromium or python playwright is missing")
        return
    shots = paths.build_dir() / "screenshots" / "site"
    shots.mkdir(parents=True, exist_ok=True)
    args = ["--no-sandbox", "--headless", "--disable-background-networking", "--disable-component-update"]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=args, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            errors = []
            page.on("pageerror", lambda err: errors.append(str(err)))
            page.goto(index.as_uri())
            assert page.locator("a").count() == len(pages)
            for name in pages:
                page.goto((index.parent / name).as_uri())
                assert page.locator(".jp-Cell").count() > 3, name
                if name.startswith("05_"):  # its equations typeset by the local MathJax (no network here)
                    page.locator(".MathJax, .MathJax_Display, mjx-container").first.wait_for(timeout=60_000)
                page.screenshot(path=str(shots / name.replace(".html", ".png")), full_page=False)
            assert errors == [], errors
        finally:
            browser.close()
