"""The report card's page templates (Jinja2, autoescaped) and its one stylesheet, inlined in
every page so that a page opened from disk needs nothing else."""

from __future__ import annotations

CSS = """
body { font-family: "Noto Sans", "DejaVu Sans", Arial, sans-serif; margin: 0; color: #222; }
header { background: #1f5f8b; color: #fff; padding: 0.8rem 1.2rem; }
header a { color: #fff; }
header h1 { margin: 0; font-size: 1.4rem; }
nav.langs { float: inline-end; }
nav.langs a { margin-inline-start: 0.8rem; }
nav.places { padding: 0.5rem 1.2rem; background: #eef3f7; }
nav.places a { margin-inline-end: 0.8rem; }
main { padding: 0 1.2rem 2rem; max-width: 1100px; }
section.card { border-top: 1px solid #ccc; padding: 0.8rem 0; }
.chart-and-table { display: flex; flex-wrap: wrap; gap: 1rem; align-items: flex-start; }
figure { margin: 0; }
table { border-collapse: collapse; font-size: 0.85rem; }
th, td { border: 1px solid #ddd; padding: 0.15rem 0.5rem; text-align: start; }
td.num { font-variant-numeric: tabular-nums; }
.suppressed { color: #777; font-style: italic; }
.alerts li { margin-bottom: 0.6rem; }
.msg { text-align: left; margin-top: 0.2rem; }
.alert-kind { color: #c0392b; font-weight: bold; }
.latest { font-size: 1.2rem; }
.note { color: #555; font-size: 0.85rem; }
@media print { nav, .no-print { display: none; } body { font-size: 10pt; } }
"""

_HEAD = """<!doctype html>
<html lang="{{ lang }}" dir="{{ dir }}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title_text }}</title>
<style>{{ css }}</style>
</head>
<body>
<header>
<nav class="langs" aria-label="language">
{%- for code, name in languages %}
<a href="{{ prefix }}{{ code }}/{{ file }}" lang="{{ code }}"{% if code == lang %} aria-current="page"{% endif %}>{{ name }}</a>
{%- endfor %}
</nav>
<h1>{{ initiative }} — {{ w('report_card') }}</h1>
</header>
<nav class="places" aria-label="{{ w('localities') }}">
{%- for p in pages %}
<a href="{{ own }}{{ 'index.html' if p.geography.parent is none else p.geography.code ~ '.html' }}">{{ place(p.geography.code) }}</a>
{%- endfor %}
<a href="{{ own }}summary.html">{{ w('summary') }}</a>
</nav>
"""

_ALERTS = """
<section class="alerts">
<h2>{{ w('open_alerts') }}</h2>
{%- if flags %}
<ul>
{%- for f in flags %}
<li id="alert-{{ f.id }}"><span class="alert-kind">#{{ f.id }} {{ kind(f.kind) }}</span> — {{ place(f.geo_code) }}, <bdi dir="ltr">{{ f.period }}</bdi>:
{%- if f.headlines.get(lang) %}<div class="headline">{{ f.headlines[lang] }}</div>{% endif %}
<div class="msg" lang="en" dir="ltr">{{ f.message }}</div></li>
{%- endfor %}
</ul>
{%- if w('english_only') %}<p class="note">{{ w('english_only') }}</p>{% endif %}
{%- else %}
<p>{{ w('no_alerts') }}</p>
{%- endif %}
</section>
"""

PAGE = (
    """{% set title_text = initiative ~ ' — ' ~ place(page.geography.code) %}"""
    + _HEAD
    + """<main>
<h2>{{ place(page.geography.code) }}</h2>
{% set flags = page.flags %}"""
    + _ALERTS
    + """
{%- if not cards %}
<p>{{ w('no_data') }}</p>
{%- endif %}
{%- for card, svg in cards %}
{% set m = card.measure %}
<section class="card" id="{{ m.id }}">
<h3>{{ title(m) }}</h3>
<p class="note">{{ w(m.direction.value) }}{% if m.unit_label %} · {{ unit(m) }}{% endif %}</p>
{%- if card.latest %}
<p class="latest">{{ w('latest') }} (<bdi dir="ltr">{{ card.latest.period }}</bdi>):
{% if card.latest.suppressed %}<span class="suppressed">{{ w('suppressed') }}</span>{% else %}<strong>{{ num(card, card.latest.value) }}</strong>{% endif %}
· {{ w('coverage') }}: {{ card.latest.reported }}/{{ card.latest.expected }}
{%- if card.path %} · {{ w('baseline') }} <bdi dir="ltr">{{ m.baseline.period }}</bdi>: <bdi>{{ num(card, m.baseline.value) }}</bdi> · {{ w('target') }} <bdi dir="ltr">{{ m.target.period }}</bdi>: <bdi>{{ num(card, m.target.value) }}</bdi>{% endif %}
</p>
{%- else %}
<p>{{ w('no_data') }}</p>
{%- endif %}
<div class="chart-and-table">
<figure dir="ltr" role="img" aria-label="{{ title(m) }}">{{ svg | safe }}</figure>
<table>
<caption>{{ w('data_table') }}</caption>
<thead><tr><th scope="col">{{ w('period') }}</th><th scope="col">{{ w('value') }}</th><th scope="col">{{ w('coverage') }}</th>{% if card.path %}<th scope="col">{{ w('path') }}</th>{% endif %}</tr></thead>
<tbody>
{%- set path = dict(card.path) %}
{%- for p in card.points %}
<tr><td><bdi dir="ltr">{{ p.period }}</bdi></td>
{%- if p.suppressed %}<td class="suppressed">{{ w('suppressed') }}</td>{% else %}<td class="num">{{ num(card, p.value) }}</td>{% endif %}
<td class="num">{{ p.reported }}/{{ p.expected }}</td>
{%- if card.path %}<td class="num">{{ num(card, path.get(p.period)) if p.period in path else '' }}</td>{% endif %}</tr>
{%- endfor %}
</tbody>
</table>
</div>
{%- if card.points | selectattr('suppressed') | list %}<p class="note">{{ w('suppressed_note') }}</p>{% endif %}
{%- for gap in card.gaps %}
<h4>{{ w('gap') }}: {{ group(gap.gap.ahead) }} · {{ group(gap.gap.behind) }}</h4>
<div class="chart-and-table">
<figure dir="ltr" role="img" aria-label="{{ w('gap') }}: {{ group(gap.gap.ahead) }} · {{ group(gap.gap.behind) }}">{{ gap_drawings[m.id ~ '/' ~ gap.gap.id] | safe }}</figure>
<table>
<caption>{{ w('data_table') }}</caption>
<thead><tr><th scope="col">{{ w('period') }}</th><th scope="col"><span style="color:#1f5f8b">■</span> {{ group(gap.gap.ahead) }}</th><th scope="col"><span style="color:#d35400">■</span> {{ group(gap.gap.behind) }}</th></tr></thead>
<tbody>
{%- for period, ahead, behind in gap.periods %}
<tr><td><bdi dir="ltr">{{ period }}</bdi></td>
{%- if ahead is none %}<td class="suppressed" colspan="2">{{ w('suppressed') }}</td>{% else %}<td class="num">{{ num(card, ahead) }}</td><td class="num">{{ num(card, behind) }}</td>{% endif %}</tr>
{%- endfor %}
</tbody>
</table>
</div>
{%- endfor %}
{%- for f in card.flags %}
<p><a href="#alert-{{ f.id }}" class="alert-kind">#{{ f.id }} {{ kind(f.kind) }}</a> — {{ place(f.geo_code) }}, <bdi dir="ltr">{{ f.period }}</bdi></p>
{%- endfor %}
</section>
{%- endfor %}
<p class="note no-print"><a href="{{ prefix }}datapackage.json">{{ w('download') }}</a> · {{ w('built') }}: {{ built }}</p>
</main>
</body>
</html>
"""
)

SUMMARY = (
    """{% set title_text = initiative ~ ' — ' ~ w('summary') %}{% set file = 'summary.html' %}{% set pages = [root] %}"""
    + _HEAD
    + """<main>
<h2>{{ w('summary') }} — {{ place(root.geography.code) }}</h2>
<table>
<thead><tr><th scope="col">{{ w('measure') }}</th><th scope="col">{{ w('latest') }}</th><th scope="col">{{ w('baseline') }}</th><th scope="col">{{ w('target') }}</th><th scope="col">{{ w('coverage') }}</th></tr></thead>
<tbody>
{%- for card in headline %}
{% set m = card.measure %}
<tr><th scope="row">{{ title(m) }}</th>
<td class="num">{% if card.latest %}{% if card.latest.suppressed %}<span class="suppressed">{{ w('suppressed') }}</span>{% else %}{{ num(card, card.latest.value) }}{% endif %} ({{ card.latest.period }}){% endif %}</td>
<td class="num">{% if m.baseline %}{{ num(card, m.baseline.value) }} ({{ m.baseline.period }}){% endif %}</td>
<td class="num">{% if m.target %}{{ num(card, m.target.value) }} ({{ m.target.period }}){% endif %}</td>
<td class="num">{% if card.latest %}{{ card.latest.reported }}/{{ card.latest.expected }}{% endif %}</td></tr>
{%- endfor %}
</tbody>
</table>
{%- for domain, dcards in domains %}
<h3>{{ domain }}</h3>
<table>
<tbody>
{%- for card in dcards %}
<tr><th scope="row">{{ title(card.measure) }}</th><td class="num">{% if card.latest %}{% if card.latest.suppressed %}<span class="suppressed">{{ w('suppressed') }}</span>{% else %}{{ num(card, card.latest.value) }}{% endif %} ({{ card.latest.period }}){% endif %}</td></tr>
{%- endfor %}
</tbody>
</table>
{%- endfor %}
"""
    + _ALERTS
    + """
<p class="note">{{ w('built') }}: {{ built }}</p>
</main>
</body>
</html>
"""
)
