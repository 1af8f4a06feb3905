"""Every UI text the templates and the builder script ask for exists in Korean and in English."""

from __future__ import annotations

import re

from segmint.web import STATIC_DIR, TEMPLATES_DIR
from segmint.web.i18n import CATALOG, js_catalog

LITERAL = re.compile(r"""\bt\(\s*["']([a-z_.0-9]+)["']\s*[,)]""")  # t("key") or t("key", vars)


def test_template_keys_exist_in_both_languages() -> None:
    used = {k for p in TEMPLATES_DIR.glob("*.html") for k in LITERAL.findall(p.read_text(encoding="utf-8"))}
    assert len(used) > 100
    for lang in ("ko", "en"):
        missing = sorted(k for k in used if k not in CATALOG[lang])
        assert missing == [], f"{lang}: {missing}"
    # keys built from values (kind, role, explain node kinds, user trait groups)
    for prefix, values in {"seg.kind_": ("dynamic", "static"), "role.": ("admin", "marketer", "viewer"),
                           "users.group_": ("declared", "computed", "other"),
                           "seg.status_": ("error", "unsupported"),
                           "explain.kind_": ("and", "or", "not", "trait", "performed", "aggregate", "first", "last",
                                             "sequence", "with", "streak", "interval_ratio", "in_segment"),
                           "panel.": ("growth", "overlap", "profile", "no_data", "failed")}.items():
        for v in values:
            assert prefix + v in CATALOG["ko"] and prefix + v in CATALOG["en"], prefix + v
    assert set(CATALOG["ko"]) == set(CATALOG["en"])


def test_builder_script_keys_exist_in_both_languages() -> None:
    # the builder and the filter rows it shares with the composer (filters.js)
    script = "".join((STATIC_DIR / f).read_text(encoding="utf-8") for f in ("builder.js", "filters.js"))
    used = set(LITERAL.findall(script))
    used |= {f"{p}_{v}" for p, vs in {"type": ("performed", "trait", "last", "first", "with", "in_segment"),
                                      "freq": ("did", "not", "lte", "eq", "between"),
                                      "pick": ("first", "last", "any"),
                                      "u": ("minutes", "hours", "days", "weeks", "months"),
                                      "win": ("ever", "last", "ago", "between", "after", "before", "each",
                                              "calendar"),
                                      "trait": ("declared", "computed", "profile")}.items() for v in vs}
    ops = re.search(r"const PROP_OPS = \[(.*?)\];", script, re.S).group(1)
    used |= {"op_" + o for o in re.findall(r'"(\w+)"', ops)} | {"op_within_last", "op_older_than"}
    assert len(used) > 60
    for lang in ("ko", "en"):
        table = js_catalog(lang)
        missing = sorted(k for k in used if "b." + k not in table)
        assert missing == [], f"{lang}: {missing}"
    assert js_catalog("en")["b.and"] == "All of (AND)" and js_catalog("ko")["b.and"] == "모두 만족 (AND)"
