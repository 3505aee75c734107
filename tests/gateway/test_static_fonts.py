"""The fonts the pages serve themselves (Noto Nastaliq Urdu for Urdu pages):
served as WOFF2, cached for good under a versioned name, and every file the
stylesheet names is there."""
import re

import pytest

from services.gateway.pages import STATIC

FONTS = sorted(path.name for path in STATIC.glob("*.woff2"))
CSS_URL = re.compile(r"""url\(\s*["']?([^"')]+?)["']?\s*\)""")


def test_the_fonts_are_there():
    assert FONTS == ["noto-nastaliq-urdu-5.3.0-arabic-400-normal.woff2",
                     "noto-nastaliq-urdu-5.3.0-arabic-700-normal.woff2"]
    assert (STATIC / "OFL-noto-nastaliq-urdu.txt").read_text().count("SIL OPEN FONT LICENSE") >= 1


@pytest.mark.parametrize("name", FONTS)
def test_a_font_is_served_as_woff2_and_kept(gateway, name):
    response = gateway.client.get(f"/static/{name}")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "font/woff2"
    assert response.get_data().startswith(b"wOF2")
    assert response.get_data() == (STATIC / name).read_bytes()
    # The name carries the version: a new font is a new URL, so it can be kept.
    assert re.search(r"-\d+\.\d+\.\d+-", name)
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]


def test_the_stylesheet_and_scripts_keep_their_short_cache(gateway):
    for name in ("page.css", "register.js"):
        assert gateway.client.get(f"/static/{name}").headers["Cache-Control"] == "public, max-age=300"


def test_the_licence_is_not_served(gateway):
    assert gateway.client.get("/static/OFL-noto-nastaliq-urdu.txt").status_code == 404


def test_the_stylesheet_names_only_files_that_exist():
    css = (STATIC / "page.css").read_text()
    urls = CSS_URL.findall(css)
    assert sorted(urls) == FONTS                   # every font used, nothing else fetched
    for url in urls:
        # Relative to /static/page.css: our own origin, a flat name the route serves.
        assert "/" not in url and ":" not in url
        assert (STATIC / url).is_file()
    assert "@import" not in css


def test_the_pages_may_load_fonts_only_from_their_own_origin(gateway):
    policy = gateway.client.get("/static/page.css").headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["default-src"] == "'self'"
    assert directives.get("font-src", "'self'") == "'self'"
