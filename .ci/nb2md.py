"""Render a notebook as Markdown (README.md from nbs/index.ipynb) without Quarto.

Follows nbdev's rules: `#| hide` cells are dropped, other directives are stripped, `#| echo: false`
shows only outputs. Where Quarto is installed, `nbdev_readme` gives the same README."""
import json, os, re, sys
from pathlib import Path

def directives(src):
    return {m.group(1).rstrip(':'): m.group(2).strip() for m in re.finditer(r'^#\|\s*([\w-]+:?)\s*(.*)$', src, re.M)}

def code(src): return '\n'.join(l for l in src.splitlines() if not l.startswith('#|')).strip('\n')

def outputs(cell):
    "Rendered outputs: stdout as text, tables as HTML, other results as text; no stderr, progress bars or images."
    out = []
    for o in cell.get('outputs', []):
        if o.get('output_type') == 'stream':
            if o.get('name') == 'stdout': out.append(('text', ''.join(o['text']).rstrip('\n')))
            continue
        data = o.get('data', {})
        html, md, plain = (''.join(data.get(k, '')) for k in ('text/html', 'text/markdown', 'text/plain'))
        if '<progress' in html or 'fastprogress' in html: continue
        if md: out.append(('md', md.strip('\n')))
        elif '<table' in html: out.append(('md', html.strip('\n')))
        elif plain and not plain.startswith('<IPython.core.display') and not plain.startswith('<Figure'): out.append(('text', plain.rstrip('\n')))
    return out

def relink(md, prefix):
    "Relative image and link targets of `md` made relative to the output's folder (`prefix`: the notebook's folder from there)."
    if prefix in ('', '.'): return md
    return re.sub(r'(!?\[[^\]]*\]\()(?![a-z]+:|/|#)([^)\s]+)', lambda m: f"{m[1]}{prefix}/{m[2]}", md)

def render(nb, prefix=''):
    parts = []
    for cell in nb['cells']:
        src = ''.join(cell['source'])
        if cell['cell_type'] == 'markdown': parts.append(relink(src.strip('\n'), prefix)); continue
        if cell['cell_type'] != 'code': continue
        d = directives(src)
        if 'hide' in d or 'default_exp' in d or d.get('include') == 'false': continue
        if d.get('echo') != 'false' and code(src): parts.append(f"```python\n{code(src)}\n```")
        parts += [f"```\n{o}\n```" if kind == 'text' else o for kind, o in outputs(cell)]
    return '\n\n'.join(p for p in parts if p) + '\n'

def main(src, dst):
    nb = json.loads(Path(src).read_text(encoding='utf-8'))
    dst = Path(dst)
    prefix = os.path.relpath(Path(src).resolve().parent, dst.resolve().parent)
    md = '<!-- README.md is generated from nbs/index.ipynb: edit that, then run make readme -->\n\n' + render(nb, prefix)
    if not dst.exists() or dst.read_text(encoding='utf-8') != md:
        tmp = dst.with_name('.' + dst.name + '.tmp'); tmp.write_text(md, encoding='utf-8'); tmp.replace(dst)

if __name__ == '__main__': main(*sys.argv[1:3])
