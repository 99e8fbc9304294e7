"""Open the built documentation site in headless Chromium and check what a reader sees.

Usage: python .ci/check_site.py docs/_build/html   (run by `bash .ci/docs --check`)

Serves the folder on a free loopback port and opens the home page, a page of the paper's equations
and a tutorial page. On each: the math rendered (every Sphinx math element holds MathJax's output,
and no raw TeX delimiters are left in the text), every image loaded, and every internal link resolves
(the page exists and, for a #fragment, holds that id). Exit status 0 when all pass, 1 with a list of
what failed, 2 when the site or the browser is missing.
"""
import functools
import http.server
import re
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
PAGES = ["index.html", "docs/paper/sec-4-1.html", "docs/tutorials/03_rare_loss.html"]  # home, equations, a tutorial
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]

MATH_STATE = """
if (!document.body || document.readyState !== 'complete') return null;
const math = Array.from(document.querySelectorAll('span.math, div.math'));
return {n: math.length,
        rendered: math.filter(e => e.querySelector('mjx-container')).length,
        text: document.body.innerText};
"""
IMAGES = """
return Array.from(document.images).map(i => [i.getAttribute('src'), i.complete && i.naturalWidth > 0]);
"""
LINKS = "return Array.from(document.querySelectorAll('a[href]')).map(a => a.href);"


def serve(root):
    handler = functools.partial(_Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.handle_error = lambda request, address: None  # a browser that drops a connection is not a failure
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for f in FLAGS + [f"--user-data-dir={tempfile.mkdtemp(prefix='numpy-dlra-chromium-')}"]:
        opts.add_argument(f)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)


def check_page(driver, base, page, problems):
    driver.get(base + page)
    deadline, state = time.time() + 30, None
    while time.time() < deadline:  # a redirect may still be under way; MathJax typesets after the page loads
        state = driver.execute_script(MATH_STATE)
        if state and state["rendered"] == state["n"]:
            break
        time.sleep(0.25)
    if state is None:
        problems.append(f"{page}: did not finish loading")
        return 0, 0
    if state["rendered"] != state["n"]:
        problems.append(f"{page}: {state['n'] - state['rendered']} of {state['n']} math elements not rendered")
    raw = re.findall(r"\\\(|\\\)|\\\[|\\\]|\$\$", state["text"])
    if raw:
        problems.append(f"{page}: raw TeX left in the text ({len(raw)} delimiters)")
    for src, ok in driver.execute_script(IMAGES):
        if not ok:
            problems.append(f"{page}: image {src} did not load")
    links = {h for h in driver.execute_script(LINKS) if h.startswith(base)}
    for href in sorted(links):
        url, _, frag = href.partition("#")
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                body = r.read().decode("utf-8", "replace") if frag else ""
        except OSError as exc:
            problems.append(f"{page}: link {href} does not resolve ({exc})")
            continue
        frag = urllib.parse.unquote(frag)
        if frag and f'id="{frag}"' not in body:
            problems.append(f"{page}: link {href}: no id {frag!r} on that page")
    return state["n"], len(links)


def main(root):
    root = Path(root)
    missing = [p for p in PAGES if not (root / p).is_file()]
    if missing:
        print(f"check_site: {root} lacks {', '.join(missing)}: build it first (bash .ci/docs)", file=sys.stderr)
        return 2
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        print(f"check_site: needs {CHROMIUM} and {CHROMEDRIVER} (Debian: chromium chromium-driver)", file=sys.stderr)
        return 2
    server, base = serve(root)
    driver, problems = browser(), []
    try:
        for page in PAGES:
            n_math, n_links = check_page(driver, base, page, problems)
            print(f"check_site: {page} ({driver.current_url.removeprefix(base)}): {n_math} math elements, "
                  f"{n_links} internal links")
    finally:
        driver.quit()
        server.shutdown()
    for p in problems:
        print(f"check_site: FAIL {p}", file=sys.stderr)
    print(f"check_site: {'all checks passed' if not problems else f'{len(problems)} problems'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "docs/_build/html"))
