"""The report as a reader sees it: index.html of a small real grid, opened in headless Chromium.

Debian's `chromium` and `chromium-driver` (installed by .ci/run) driven by selenium.  Without them the
test fails, never skips: a report nobody opened in a browser is not checked.
"""
import json
import shutil

import pytest

import run_all

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out = tmp_path_factory.mktemp("results")
    assert run_all.main(["--study", "batchnorm_lr", "--results-dir", str(out), "--epochs", "2", "--seeds", "2",
                         "--set", "data.train_size=300", "--wandb-mode", "disabled"]) == 0
    return out


@pytest.fixture(scope="module")
def browser():
    if not (CHROMIUM and DRIVER):
        pytest.fail("headless Chromium is needed: `apt-get install chromium chromium-driver` (.ci/run installs "
                    f"them); found chromium={CHROMIUM}, chromedriver={DRIVER}")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()


def problems(driver, index) -> list[str]:
    """Everything a reader would trip over on the page: broken images, links to missing anchors,
    console errors, an unstyled page, and an overview that is not the first thing."""
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get_log("browser")   # drop what an earlier page logged
    driver.get(index.as_uri())
    WebDriverWait(driver, 30).until(lambda d: d.execute_script(
        "return document.readyState === 'complete' && Array.from(document.images).every(i => i.complete)"))
    found = []
    images = driver.execute_script("return Array.from(document.images).map(i => [i.getAttribute('src'), i.naturalWidth])")
    found += [f"image {src} did not load" for src, width in images if not width > 0]
    links = driver.execute_script("return Array.from(document.querySelectorAll('a[href^=\"#\"]'))"
                                  ".map(a => a.getAttribute('href').slice(1))"
                                  ".filter(id => !document.getElementById(id))")
    found += [f"link to #{target} has no anchor" for target in links]
    found += [f"console: {entry['message']}" for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    font = driver.execute_script("return getComputedStyle(document.body).fontFamily")
    if "sans" not in font.lower() and "arial" not in font.lower():
        found.append(f"body font {font!r} (stylesheet not applied)")
    first = driver.execute_script("return [document.querySelector('h2').textContent, "
                                  "document.querySelector('table').className]")
    if first != ["Verdicts", "overview"]:
        found.append(f"the page opens with {first}, not the verdict overview")
    return found


@pytest.mark.slow
def test_the_report_opens_in_chromium_with_everything_loaded(results, browser):
    index = results / "report" / "index.html"
    assert problems(browser, index) == []
    stored = json.loads((results / "report" / "verdicts.json").read_text())
    rows = browser.execute_script(
        "return Array.from(document.querySelectorAll('table.overview tbody tr')).map(tr => "
        "[tr.querySelector('a').getAttribute('href'), tr.querySelector('.badge').textContent, "
        "getComputedStyle(tr.querySelector('.badge')).backgroundColor])")
    assert [(href, verdict) for href, verdict, _ in rows] == \
        [(f"#study-{r['study']}", r["verdict"]) for r in stored["studies"]]
    assert all(colour != "rgba(0, 0, 0, 0)" for *_, colour in rows)          # the verdict is coloured
    toc = browser.execute_script("return Array.from(document.querySelectorAll('nav.toc a')).map(a => a.hash)")
    assert "#study-batchnorm_lr" in toc and "#overview" in toc
    assert browser.execute_script("return document.images.length") >= 5
    assert browser.execute_script("return document.querySelectorAll('table[border]').length") == 0


@pytest.mark.slow
def test_the_check_finds_a_broken_image_and_a_dead_link(results, browser, tmp_path):
    copy = tmp_path / "report"
    shutil.copytree(results / "report", copy)
    (copy / "batchnorm_lr_heatmap.png").unlink()
    html = (copy / "index.html").read_text()
    (copy / "index.html").write_text(html.replace("id=\"study-batchnorm_lr\"", "id=\"gone\"", 1))
    found = problems(browser, copy / "index.html")
    assert "image batchnorm_lr_heatmap.png did not load" in found
    assert "link to #study-batchnorm_lr has no anchor" in found
    assert any(p.startswith("console:") and "batchnorm_lr_heatmap.png" in p for p in found)
