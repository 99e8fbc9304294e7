"""Open the built documentation site in headless Chromium and check what a reader sees.

Usage: python .ci/check_site.py docs/_build/html   (run by `bash .ci/docs --check`)

First, without a browser, every built page: nothing loaded from another site (every script, stylesheet,
image and frame is local, inline styles and the site's CSS files included), and no en dash before a
flag name (a typographer's "--fuse-ratio" -> "–fuse-ratio"). Then serves the folder on a free loopback
port and opens, in a 1280 x 1000 window, the home page (index.html at the root, itself, not a redirect),
pages of the paper's equations, a tutorial page and the API page. On each: it loads and a screenshot
can be taken; the math rendered (every Sphinx math element holds MathJax's output, and no raw TeX
delimiters are left in the text); every image loaded; everything it fetched came from the site;
nothing is wider than the window and no code block scrolls sideways (display math may scroll inside
its own box); every internal link resolves (the page exists and, for a #fragment, holds that id).
Exit status 0 when all pass, 1 with a list of what failed, 2 when the site or the browser is missing.
"""
import argparse
import functools
import html.parser
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
PAGES = ["index.html", "docs/paper/sec-4-1.html", "docs/paper/eq-13.html", "docs/tutorials/03_rare_loss.html",
         "docs/api.html"]  # the home page, equations (Eq. 13's are the longest), a tutorial, the docstrings
WIDTH, HEIGHT = 1280, 1000
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
FETCHED = "return performance.getEntriesByType('resource').map(e => e.name);"
WIDE = """
const width = document.documentElement.clientWidth;
const name = e => e.tagName.toLowerCase() + (e.className && typeof e.className === 'string' ?
    '.' + e.className.trim().split(/\\s+/).join('.') : '');
const wide = Array.from(document.body.querySelectorAll('*'))
    .filter(e => e.getBoundingClientRect().right > width + 1 && !e.closest('div.math, mjx-container'))
    .map(name);
const scrolling = Array.from(document.querySelectorAll('pre'))
    .filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.textContent.split('\\n')[0].slice(0, 60));
return {page: document.documentElement.scrollWidth, width: width, wide: wide.slice(0, 5), scrolling: scrolling};
"""

# Attributes that make a browser fetch something, by tag (a link only for these rel values)
FETCH_ATTRS = {"script": ("src",), "img": ("src", "srcset"), "source": ("src", "srcset"), "iframe": ("src",),
               "video": ("src", "poster"), "audio": ("src",), "embed": ("src",), "object": ("data",),
               "input": ("src",), "link": ("href",)}
FETCH_RELS = {"stylesheet", "icon", "shortcut", "preload", "modulepreload", "prefetch", "manifest",
              "apple-touch-icon", "mask-icon"}
REMOTE = re.compile(r"^\s*(?:[a-zA-Z][a-zA-Z0-9+.-]*:)?//")
CSS_REMOTE = re.compile(r"(?:url\(\s*[\'\"]?|@import\s+[\'\"]?|href=[\'\"])\s*((?:[a-zA-Z][a-zA-Z0-9+.-]*:)?//[^\s\'\")]+)")
DASHES = "\u2013"  # an en dash: what a typographer makes of "--"


class _Page(html.parser.HTMLParser):
    """The remote URLs a page would fetch, and its text (outside scripts and styles)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.remote, self.text, self._skip, self.refresh = [], [], 0, False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("script", "style"):
            self._skip += 1
        if tag == "meta" and (attrs.get("http-equiv") or "").lower() == "refresh":
            self.refresh = True
        if tag == "link" and not FETCH_RELS & set((attrs.get("rel") or "").lower().split()):
            return
        for name in FETCH_ATTRS.get(tag, ()):
            for url in (attrs.get(name) or "").split(",") if name == "srcset" else [attrs.get(name) or ""]:
                if REMOTE.match(url):
                    self.remote.append(f"<{tag} {name}={url.strip().split()[0]}>")

    def handle_endtag(self, tag):
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data):
        if self._skip:
            self.remote += [f"<style> {u}" for u in CSS_REMOTE.findall(data)] if self.lasttag == "style" else []
        else:
            self.text.append(data)


def cli_flags():
    """The long flags of every numpy-dlra command, without their "--"; none if the package does not import."""
    try:
        from numpy_dlra.cli import _parser
    except Exception:  # noqa: BLE001 - the generic pattern below still applies
        return set()
    names, parsers = set(), [_parser()]
    while parsers:
        for action in parsers.pop()._actions:
            names |= {o[2:] for o in action.option_strings if o.startswith("--")}
            if isinstance(action, argparse._SubParsersAction):
                parsers += list(action.choices.values())
    return names


def check_files(root, problems):
    """Every .html page and .css file of the site, read from disk: remote resources, dashes before flags."""
    flags = sorted(cli_flags() - {"help"}, key=len, reverse=True)
    # an en dash before a known flag, or before any hyphenated lower-case word (the shape of a flag)
    dash = re.compile(f"[{DASHES}]-?(?:{'|'.join(map(re.escape, flags)) + '|' if flags else ''}"
                      r"[a-z][a-z0-9]*(?:-[a-z0-9]+)+)(?![\w-])")
    pages = sorted(root.rglob("*.html"))
    for path in pages:
        page = _Page()
        page.feed(path.read_text(encoding="utf-8", errors="replace"))
        rel = path.relative_to(root).as_posix()
        problems += [f"{rel}: loads {r} from another site" for r in page.remote]
        problems += [f"{rel}: an en dash before a flag: {m.group(0)!r}" for m in dash.finditer("".join(page.text))]
        if rel == "index.html" and page.refresh:
            problems.append("index.html: a meta-refresh redirect, not the home page")
    for path in sorted(root.rglob("*.css")):
        for url in CSS_REMOTE.findall(path.read_text(encoding="utf-8", errors="replace")):
            problems.append(f"{path.relative_to(root).as_posix()}: loads {url} from another site")
    return len(pages)


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


def check_page(driver, base, page, problems, shots, bodies):
    try:
        driver.get(base + page)
    except Exception as exc:  # noqa: BLE001 - a page that never finishes loading (selenium's TimeoutException)
        problems.append(f"{page}: did not load ({type(exc).__name__})")
        return 0, 0
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
    if driver.current_url.partition("#")[0] != base + page:
        problems.append(f"{page}: went on to {driver.current_url.removeprefix(base)} (a redirect)")
    try:
        (shots / (page.replace("/", "_") + ".png")).write_bytes(driver.get_screenshot_as_png())
    except Exception as exc:  # noqa: BLE001
        problems.append(f"{page}: no screenshot ({type(exc).__name__})")
    for src, ok in driver.execute_script(IMAGES):
        if not ok:
            problems.append(f"{page}: image {src} did not load")
    for url in driver.execute_script(FETCHED):
        if not url.startswith(base):
            problems.append(f"{page}: fetched {url} from another site")
    wide = driver.execute_script(WIDE)
    if wide["page"] > wide["width"] + 1:
        problems.append(f"{page}: {wide['page']} px wide in a {wide['width']} px window: {', '.join(wide['wide'])}")
    for first_line in wide["scrolling"]:
        problems.append(f"{page}: a code block scrolls sideways: {first_line!r}")
    links = {h for h in driver.execute_script(LINKS) if h.startswith(base)}
    for href in sorted(links):
        url, _, frag = href.partition("#")
        if url not in bodies:
            try:
                with urllib.request.urlopen(url, timeout=10) as r:
                    bodies[url] = r.read().decode("utf-8", "replace")
            except OSError as exc:
                bodies[url] = exc
        body = bodies[url]
        if isinstance(body, Exception):
            problems.append(f"{page}: link {href} does not resolve ({body})")
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
    problems = []
    n_files = check_files(root, problems)
    print(f"check_site: {n_files} pages read: {len(problems)} remote resources or dashes before flags")
    server, base = serve(root)
    driver, shots, bodies = browser(), Path(tempfile.mkdtemp(prefix="numpy-dlra-shots-")), {}
    driver.set_window_size(WIDTH, HEIGHT)
    driver.set_page_load_timeout(60)
    try:
        for page in PAGES:
            n_math, n_links = check_page(driver, base, page, problems, shots, bodies)
            print(f"check_site: {page} ({driver.current_url.removeprefix(base)}): {n_math} math elements, "
                  f"{n_links} internal links")
    finally:
        driver.quit()
        server.shutdown()
    print(f"check_site: screenshots in {shots}")
    for p in problems:
        print(f"check_site: FAIL {p}", file=sys.stderr)
    print(f"check_site: {'all checks passed' if not problems else f'{len(problems)} problems'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "docs/_build/html"))
