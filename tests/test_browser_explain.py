"""The page teaches, in a real headless Chromium: click a conv1 pixel of a drawn digit and the
arithmetic panel's numbers add up (products → partial sum, + bias = the value, ≈ the map's
8-bit value); a conv2 pixel sums six partial sums; a pool unit is the max of its window; a
ReLU unit is max(0, x); a class's softmax is e^z ÷ Σ; the playground's output size equals
torch's conv2d for five settings; every card has its sentence; no console errors.
Screenshots at 1280×900 and 390×844 go to /tmp/page-*.png."""

import torch
import torch.nn.functional as F
from test_browser import browser, draw_stroke, open_page, settled, url  # noqa: F401 - fixtures

PANEL_READY = """(layer) => {
  const p = document.querySelector('#explain');
  return p && !p.hidden && !p.classList.contains('busy') && p.dataset.op &&
    document.querySelector('#explain-title').textContent.startsWith(layer + ' ·');
}"""

READ = """() => {
  const v = (sel) => [...document.querySelectorAll('#explain ' + sel)]
    .map((e) => Number(e.dataset.v));
  const p = document.querySelector('#explain');
  const rows = [...document.querySelectorAll('#explain .xrow')];
  return {
    op: p.dataset.op, value: Number(p.dataset.value),
    shown: p.dataset.shown === '' ? null : Number(p.dataset.shown),
    products: rows.map((r) => [...r.querySelectorAll('table.products td')]
      .map((e) => Number(e.dataset.v))),
    partial: v('.partial'), terms: v('.xsum .term'), sum: v('.xsum .sum'),
    bias: v('.xsum .bias'), inputs: v('table.inputs td'), x: v('.xsum .x'),
    exp: v('.xsum .exp'), title: document.querySelector('#explain-title').textContent,
  };
}"""


def click_unit(page, layer, fx=0.5, fy=0.45, k=0):
    c = page.query_selector_all(f'[data-layer="{layer}"] .maps canvas')[k]
    c.evaluate("(e) => e.scrollIntoView({block: 'start'})")
    bb = c.bounding_box()
    page.mouse.click(bb["x"] + bb["width"] * fx, bb["y"] + bb["height"] * fy)
    page.wait_for_function(PANEL_READY, arg=layer, timeout=20000)
    return page.evaluate(READ)


def step_of(page, layer, title):
    """The map's 8-bit step ((hi − lo) / 255) of the channel in the panel's title."""
    ch = int(title.split("channel ")[1].split(" ")[0])
    return page.evaluate(
        "([l, ch]) => { const d = window.convsee.data.layers[l]; const k = d.channels.indexOf(ch);"
        " const [lo, hi] = d.ranges[k]; return (hi - lo) / 255; }",
        [layer, ch],
    )


def check_conv(page, layer, r, channels):
    assert r["op"] == "conv2d"
    assert len(r["partial"]) == channels and len(r["products"]) == channels
    for prods, part in zip(r["products"], r["partial"], strict=True):
        assert len(prods) == 25 and abs(sum(prods) - part) <= 1e-6 * max(1, abs(part)) + 1e-9
    assert abs(sum(r["partial"]) + r["bias"][0] - r["value"]) <= 1e-6 * max(1, abs(r["value"]))
    if channels > 1:
        assert len(r["terms"]) == channels and abs(sum(r["terms"]) - r["sum"][0]) <= 1e-6
    step = step_of(page, layer, r["title"])
    assert r["shown"] is not None and abs(r["shown"] - r["value"]) <= step / 2 + 1e-4


def torch_out(n, k, s, p, d):
    y = F.conv2d(torch.zeros(1, 1, n, n), torch.zeros(1, 1, k, k), stride=s, padding=p, dilation=d)
    return y.shape[-1]


def test_panels_add_up(url, browser):  # noqa: F811
    errors = []
    page = open_page(browser, url, errors, width=1280, height=900)
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    # every class row on screen at 1280x900 before any scrolling (rows 7-9 were below it)
    rows = page.eval_on_selector_all(
        "#probs .prob", "(es) => es.map((e) => e.getBoundingClientRect().bottom)"
    )
    assert len(rows) == 10 and max(rows) <= 900, rows
    # an overlay where nothing speaks for the class: the server's sentence, no colour bar
    said = "no patch lowers the logit of “3”: every drop is <= 0"
    page.evaluate(
        "async (said) => { const m = await import('/static/overlay.js'); m.drawAttribution({"
        "kind: 'occlusion', target: 3, quantity: 'logit', max: 0, shape: [28, 28],"
        " map: new Uint8Array(784), none: said}); }",
        said,
    )
    assert page.inner_text("#attr-legend .what") == f"occlusion: {said}"
    assert not page.is_visible("#attr-legend canvas") and not page.is_visible("#attr-legend .hi")
    page.evaluate("async () => (await import('/static/overlay.js')).drawAttribution(null)")
    page.click("#how summary")
    page.wait_for_function("document.querySelector('#how').open")
    assert page.is_visible("#how .how-body")
    how = page.inner_text("#how .how-body")
    assert "draw a digit" in how and "28×28 numbers" in how and "mean (0.1307)" in how
    assert "max pooling" in how and "average pooling" not in how  # LeNet-5 has max pools only
    page.screenshot(path="/tmp/page-1280-how.png")
    page.click("#how summary")
    page.wait_for_function("!document.querySelector('#how').open")
    page.click("#clear")
    draw_stroke(page, 90, 50, 190, 60)  # a 7, in two strokes
    page.mouse.up()
    draw_stroke(page, 190, 60, 120, 240)
    page.mouse.up()
    settled(page)
    page.wait_for_function("window.convsee.updates > 0 && window.convsee.input.kind === 'draw'")
    # every card has its plain sentence; the ReLUs are shown
    words = page.eval_on_selector_all(
        "#layers .layer .words", "(es) => es.map((e) => e.textContent)"
    )
    assert len(words) == 8 and all(len(w) > 20 for w in words)
    assert "28 − 5 + 1 = 24" in words[0] and "negatives set to 0" in words[1]
    assert page.query_selector('[data-layer="relu1"]') is not None
    hints = page.eval_on_selector_all(".control-hint", "(es) => es.length")
    assert hints == 4

    check_conv(page, "conv1", click_unit(page, "conv1", 0.5, 0.4), 1)
    page.screenshot(path="/tmp/page-1280-conv1.png")
    # arrow keys move the unit: the title follows
    before = page.evaluate(READ)["title"]
    page.keyboard.press("ArrowRight")
    page.wait_for_function(
        "(t) => document.querySelector('#explain-title').textContent !== t && "
        "!document.querySelector('#explain').classList.contains('busy')",
        arg=before,
    )
    check_conv(page, "conv1", page.evaluate(READ), 1)
    check_conv(page, "conv2", click_unit(page, "conv2", 0.5, 0.5, k=2), 6)
    page.screenshot(path="/tmp/page-1280-conv2.png")

    r = click_unit(page, "pool1", 0.45, 0.5, k=1)
    assert r["op"] == "max_pool2d" and len(r["inputs"]) == 4
    assert abs(max(r["inputs"]) - r["value"]) <= 1e-9
    assert abs(r["shown"] - r["value"]) <= step_of(page, "pool1", r["title"]) / 2 + 1e-4
    r = click_unit(page, "relu1", 0.5, 0.5, k=3)
    assert r["op"] == "relu" and len(r["x"]) == 1 and r["value"] == max(0.0, r["x"][0])

    # softmax: click the predicted class
    pred = page.evaluate("window.convsee.data.prediction")
    page.wait_for_function("document.querySelectorAll('#probs .z').length === 10")
    page.query_selector_all("#probs .prob")[pred].click()
    page.wait_for_function(PANEL_READY, arg="softmax", timeout=20000)
    r = page.evaluate(READ)
    assert r["op"] == "softmax" and abs(r["exp"][0] / r["sum"][0] - r["value"]) <= 1e-9
    p = page.evaluate("window.convsee.data.probabilities")[pred]
    assert abs(r["value"] - p) <= 1e-5
    logits = page.eval_on_selector_all("#probs .z", "(es) => es.map((e) => Number(e.textContent))")
    assert max(range(10), key=lambda i: logits[i]) == pred

    # the playground: five settings, each output size as torch's conv2d gives it
    page.click("#playground summary")
    for n, k, s, pd, d in [
        (8, 3, 1, 0, 1),
        (28, 5, 1, 0, 1),
        (7, 3, 2, 1, 1),
        (32, 7, 4, 3, 3),
        (10, 4, 1, "same", 2),
        (5, 2, 3, "valid", 1),
    ]:
        for sel, v in [
            ("#pg-size", n),
            ("#pg-kernel", k),
            ("#pg-stride", s),
            ("#pg-padding", pd),
            ("#pg-dilation", d),
        ]:
            page.select_option(sel, str(v))
        want = torch_out(n, k, s, pd, d)
        assert page.text_content("#pg-out") == f"{want} × {want}", (n, k, s, pd, d)
        assert page.text_content("#pg-formula").endswith(f"= {want}")
    page.select_option("#pg-stride", "2")
    page.select_option("#pg-padding", "same")
    assert page.text_content("#pg-out") == "refused"  # torch refuses 'same' with stride 2
    page.query_selector("#playground").scroll_into_view_if_needed()
    page.screenshot(path="/tmp/page-1280-playground.png")
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path="/tmp/page-1280-top.png")
    # drawing: the prediction stays in sight (the side panel is sticky)
    page.evaluate("window.scrollTo(0, 400)")
    box = page.query_selector("#pred-label").bounding_box()
    assert 0 <= box["y"] and box["y"] + box["height"] <= 900
    assert errors == []
    page.close()


def test_phone_panels(url, browser):  # noqa: F811
    errors = []
    page = open_page(browser, url, errors, width=390, height=844)
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.screenshot(path="/tmp/page-390-top.png")
    box = page.query_selector("#pred-label").bounding_box()
    assert box["y"] + box["height"] <= 844  # the prediction in sight with the pad
    r = click_unit(page, "conv1", 0.5, 0.4)
    check_conv(page, "conv1", r, 1)
    page.query_selector("#explain").evaluate("(e) => e.scrollIntoView({block: 'start'})")
    page.screenshot(path="/tmp/page-390-conv1.png")
    assert errors == []
    page.close()


ROW_BOTTOMS = "(es) => es.map((e) => e.getBoundingClientRect().bottom)"


def test_overlay_keeps_classes_in_sight(url, browser):  # noqa: F811
    """At 1280x900 every overlay's legend names its method (a CAM its layer) and leaves all ten
    class rows on screen (its legend pushed rows 8-9 below it); switching it off gives the
    layout back."""
    errors = []
    page = open_page(browser, url, errors, width=1280, height=900)
    height = page.evaluate("window.innerHeight")
    plain = page.eval_on_selector_all("#probs .prob", ROW_BOTTOMS)
    for kind, words in [
        ("saliency", "saliency for “3”: |d logit / d pixel|"),
        ("gradcam", "Grad-CAM at pool2 for “3”"),
        ("scorecam", "Score-CAM at pool2 for “3”"),
        ("integrated-gradients", "integrated gradients for “3” (16 steps from black)"),
        ("occlusion", "occlusion for “3”: how much its logit drops when a patch"),
    ]:
        page.select_option("#attr", kind)
        page.wait_for_function(
            "(k) => window.convsee.data.attribution && window.convsee.data.attribution.kind === k",
            arg=kind,
        )
        settled(page)
        assert page.inner_text("#attr-legend .what").startswith(words)
        font = page.eval_on_selector("#attr-legend", "(e) => getComputedStyle(e).fontSize")
        assert float(font.removesuffix("px")) >= 11
        rows = page.eval_on_selector_all("#probs .prob", ROW_BOTTOMS)
        assert len(rows) == 10 and rows[9] <= height, (kind, rows)
    page.select_option("#attr", "")
    page.wait_for_function("!window.convsee.data.attribution")
    settled(page)
    assert not page.is_visible("#attr-legend")
    assert page.eval_on_selector_all("#probs .prob", ROW_BOTTOMS) == plain
    assert errors == []
    page.close()
