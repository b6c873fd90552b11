"""The page as ES modules (web/static): how they are served, packaged and wired, and that the
page loads in Chromium without a console error or a failed module, for LeNet-5 and for a
foreign RGB model, while its controls, hover panel, overlays and download all run.

A module script runs only when its Content-Type is a JavaScript type (the server also says
nosniff): one test serves the modules as text/plain and checks that Chromium refuses them
and that the listeners here see it, so the clean runs cannot pass by seeing nothing."""

import os
import posixpath
import re
import time
from pathlib import Path

import pytest
from conftest import REPO
from PIL import Image, ImageDraw
from starlette.testclient import TestClient
from test_browser import CHROMIUM, FLAGS, serving

import convsee.web.assets
from convsee.web.server import create_app

STATIC = Path(convsee.web.assets.__file__).parent / "static"
LOCAL = "http://127.0.0.1"
MODULES = sorted(p.relative_to(STATIC).as_posix() for p in STATIC.rglob("*.js"))
IMPORT = re.compile(r"^import\s+(?:\{([^}]*)\}|\*\s+as\s+\w+)\s+from\s+\"([^\"]+)\";", re.M)
EXPORT = re.compile(r"^export\s+(?:async\s+)?(?:function|const|let|class)\s+([\w$]+)", re.M)


def source(rel: str) -> str:
    return (STATIC / rel).read_text()


def imports(rel: str) -> dict[str, list[str]]:
    """{module imported (relative to static/): names imported from it} of one module."""
    text = source(rel)
    found = IMPORT.findall(text)
    # every import is one this test reads (no side-effect, default or dynamic imports)
    assert len(found) == len(re.findall(r"^import\b", text, re.M)), rel
    assert "import(" not in text, rel
    out = {}
    for names, spec in found:
        assert spec.startswith(("./", "../")) and spec.endswith(".js"), (rel, spec)
        target = posixpath.normpath(posixpath.join(posixpath.dirname(rel), spec))
        words = [n.split(" as ")[0].strip() for n in names.split(",") if n.strip()]
        out[target] = words
    return out


def test_modules_are_served_as_javascript(monkeypatch):
    with TestClient(create_app(), base_url=LOCAL) as c:
        page = c.get("/")
        assert '<script type="module" src="/static/app.js"></script>' in page.text
        assert page.text.count("<script") == 1  # the entry module imports the others
        assert "script-src 'self'" in page.headers["content-security-policy"]
        # whatever this machine's mimetypes tables say (Windows' registry may say text/plain)
        import starlette.responses

        monkeypatch.setattr(starlette.responses, "guess_type", lambda p: ("text/plain", None))
        for rel in MODULES:
            r = c.get(f"/static/{rel}")
            assert r.status_code == 200, rel
            assert r.headers["content-type"] == "text/javascript; charset=utf-8", rel
            assert r.headers["x-content-type-options"] == "nosniff"
        assert c.get("/static/style.css").headers["content-type"] == "text/css; charset=utf-8"
        # a revalidation answers 304, without a body type
        r = c.get("/static/draw/canvas.js")
        again = c.get("/static/draw/canvas.js", headers={"if-none-match": r.headers["etag"]})
        assert again.status_code == 304 and "content-type" not in again.headers
        assert c.get("/static/draw/missing.js").status_code == 404


def test_package_data_holds_every_page_file():
    tomllib = pytest.importorskip("tomllib")
    data = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    package = REPO / "src" / "convsee"
    packaged = {p for pattern in data["package-data"]["convsee"] for p in package.glob(pattern)}
    files = {p for p in STATIC.rglob("*") if p.is_file()}
    assert "draw/canvas.js" in MODULES  # a subfolder: "web/static/*" alone would miss it
    assert files <= packaged, sorted(str(p) for p in files - packaged)


def test_modules_import_downwards_and_every_one_is_used():
    graph = {rel: imports(rel) for rel in MODULES}
    exported = {rel: set(EXPORT.findall(source(rel))) for rel in MODULES}
    for rel, deps in graph.items():
        for target, names in deps.items():
            assert target in graph, f"{rel} imports {target}, which is not in web/static"
            missing = set(names) - exported[target]
            assert not missing, f"{rel} imports {sorted(missing)} that {target} does not export"
    # no circle: a module's imports all come before it in some order (Kahn's algorithm)
    left = {rel: set(deps) for rel, deps in graph.items()}
    while left:
        ready = [rel for rel, deps in left.items() if not deps & left.keys()]
        assert ready, f"circular imports among {sorted(left)}"
        for rel in ready:
            del left[rel]
    # every module is reached from the entry: none lies there unused
    seen, todo = set(), ["app.js"]
    while todo:
        rel = todo.pop()
        if rel not in seen:
            seen.add(rel)
            todo.extend(graph[rel])
    assert seen == set(MODULES), sorted(set(MODULES) - seen)


def test_modules_write_text_never_markup_and_share_nothing_by_accident():
    for rel in MODULES:
        text = source(rel)
        assert text.startswith("// "), f"{rel}: a header comment says what it owns"
        for bad in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert bad not in text, (rel, bad)
        assert "new Function" not in text and "<script" not in text, rel
        # the one global the page sets is window.convsee (its state, for tests)
        for m in re.finditer(r"\b(?:window|globalThis|self)\.(\w+)\s*=[^=]", text):
            assert (rel, m.group(1)) == ("state.js", "convsee"), (rel, m.group(0))
        assert "http://" not in text and "https://" not in text, f"{rel}: nothing from a CDN"


@pytest.fixture(scope="module")
def chromium():
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} missing: .ci/run installs Debian's chromium")
        pytest.skip("no Chromium here")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()


class Watched:
    """A page with every console error, page error, failed request and 4xx/5xx answer kept,
    and the page's own modules that were loaded."""

    def __init__(self, browser, url, width=1280, height=900):
        self.problems, self.modules = [], set()
        self.page = page = browser.new_page(
            viewport={"width": width, "height": height}, accept_downloads=True
        )
        page.on("console", lambda m: m.type == "error" and self.problems.append(m.text))
        page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        page.on("requestfailed", lambda r: self.problems.append(f"failed: {r.url}"))
        page.on("response", self._answered)
        page.goto(url)

    def _answered(self, r):
        if r.status >= 400:
            self.problems.append(f"{r.status}: {r.url}")
        path = r.url.split("/static/", 1)
        if len(path) == 2 and path[1].endswith(".js") and r.ok:
            self.modules.add(path[1])

    def settled(self):
        self.page.wait_for_function(
            "!window.convsee.inflight && !window.convsee.dirty && !window.convsee.timer",
            timeout=30000,
        )

    def download(self):
        got = []
        self.page.on("download", lambda d: got.append(d))
        self.page.click("#download")
        deadline = time.time() + 15
        while len(got) < 2 and time.time() < deadline:
            self.page.wait_for_timeout(100)
        return sorted(d.suggested_filename.rsplit(".", 1)[1] for d in got)


def test_lenet_page_runs_every_module_without_an_error(chromium, mnist_dir):
    with serving(create_app(data_dir=mnist_dir)) as url:
        w = Watched(chromium, url)
        page = w.page
        page.wait_for_function("window.convsee.updates > 0", timeout=30000)
        w.settled()
        assert page.inner_text("#pred-label") == "3" and w.modules == set(MODULES)
        for sel, value in [("#scale", "map"), ("#cmap", "magma"), ("#blur", "3,1")]:
            page.select_option(sel, value)
        page.select_option("#attr", "saliency")
        page.wait_for_function("window.convsee.data.attribution", timeout=30000)
        page.click("#layer-picker summary")
        page.click("#layers-all")
        page.wait_for_function(
            "document.querySelectorAll('#layers .layer').length === 12", timeout=30000
        )
        w.settled()
        page.locator(".layer[data-layer='fc2'] .maps canvas").hover()  # a strip
        assert "fc2 · unit" in page.inner_text("#tip-title")
        page.locator(".layer[data-layer='conv1'] .map canvas >> nth=2").hover()
        assert "conv1 · channel 2" in page.inner_text("#tip-title")
        page.wait_for_function("document.querySelectorAll('#tip-views canvas').length > 0")
        page.mouse.move(3, 3)
        assert w.download() == ["json", "png"]
        box = page.locator("#pad").bounding_box()  # draw on the sample, then clear
        page.mouse.move(box["x"] + 40, box["y"] + 40)
        page.mouse.down()
        page.mouse.move(box["x"] + 200, box["y"] + 200, steps=8)
        page.mouse.up()
        page.wait_for_function(
            "document.querySelector('#input-name').textContent.includes('edited')"
        )
        page.click("#clear")
        page.wait_for_function("window.convsee.empty && window.convsee.data === null")
        page.close()
    assert w.problems == []


def test_foreign_rgb_page_runs_without_an_error(chromium, tmp_path):
    from convsee.models.load import load_network

    net = load_network(
        f"{REPO}/tests/foreign_models.py:seeded_rgbnet",
        preprocess={"input_size": (3, 32, 32), "mean": [0.5] * 3, "std": [0.25] * 3},
    )
    img = Image.new("RGB", (120, 90), (40, 120, 200))
    ImageDraw.Draw(img).ellipse([30, 15, 90, 75], fill=(250, 210, 30))
    img.save(tmp_path / "photo.png")
    with serving(create_app(net)) as url:
        w = Watched(chromium, url, 390, 844)  # a phone: the same modules, another layout
        page = w.page
        page.wait_for_function("window.convsee.info", timeout=30000)
        assert page.is_hidden("#draw-box") and w.modules == set(MODULES)
        page.set_input_files("#file", str(tmp_path / "photo.png"))
        page.wait_for_function(
            "window.convsee.data && window.convsee.data.input_name.startsWith('upload:')",
            timeout=30000,
        )
        page.select_option("#attr", "gradcam")
        page.wait_for_function("window.convsee.data.attribution", timeout=30000)
        w.settled()
        assert page.evaluate("window.convsee.data.input_shape") == [32, 32, 3]
        page.locator(".layer[data-layer='conv3'] .map canvas >> nth=2").click()
        assert "conv3 · channel" in page.inner_text("#tip-title")
        assert w.download() == ["json", "png"]
        page.close()
    assert w.problems == []


def test_a_module_served_with_another_type_is_refused_and_seen(chromium, monkeypatch):
    monkeypatch.setitem(convsee.web.assets.MEDIA_TYPES, ".js", "text/plain; charset=utf-8")
    with serving(create_app()) as url:
        w = Watched(chromium, url)
        deadline = time.time() + 20
        while not w.problems and time.time() < deadline:
            w.page.wait_for_timeout(100)
        assert w.page.evaluate("window.convsee") is None  # not one line of the page ran
        w.page.close()
    assert any("MIME type" in p for p in w.problems), w.problems
