"""Build the docs site from the notebooks without Quarto: static HTML in `_docs/` (or `--out`).

Each notebook goes through nbdev's own docs processors (`nbdev.processors.FilterDefaults`, the ones
`nbdev_docs` runs before Quarto): the title cell becomes the page title, `#| hide` and `#| export`
cells drop out, directives are stripped and a `show_doc` is inserted and run for every exported
function and class. Only the cells `show_doc` needs are run (exported cells, import-only cells and
`show_doc` cells); every other cell keeps the outputs saved in the notebook. nbconvert then renders
each notebook to HTML, and each page gets the same sidebar (home, tutorials, API) and a search box.
Where Quarto is installed, `nbdev_docs` builds the Quarto site from the same notebooks as usual.

    .venv/bin/python .ci/docs.py [--out _docs] [--nbs nbs]
"""
import argparse, ast, html, json, os, re, shutil, sys, tempfile, time, warnings
from configparser import ConfigParser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ASSETS = {'.png', '.jpg', '.jpeg', '.gif', '.svg', '.webp'}
MARK = '.mriseg-docs'  # marks a folder this script built (and may replace)
_re_img = re.compile(r'<img[^>]*?\ssrc="(?!data:|https?:|/|#)([^"]+)"')
_re_dir = re.compile(r'^\s*#\|.*$\n?', re.M)
_re_quarto_dir = re.compile(r'^\s*#\|\s*([\w-]+)\s*:\s*(.*?)\s*$')
_re_attr_link = re.compile(r'\[([^\]\n]*)\]\(([^)\s]+)\)\{([^}\n]*)\}')
_re_heading = re.compile(r'<h([1-6])(?: id="[^"]*")?>(.*?)</h\1>', re.S)
_re_tag = re.compile(r'<[^>]+>')

# ---------------------------------------------------------------- the notebooks, in site order
def settings():
    cfg = ConfigParser(delimiters=['=']); cfg.read(ROOT/'settings.ini', encoding='utf-8')
    return cfg['DEFAULT']

def find_notebooks(nbs):
    "Notebooks under `nbs` as nbdev sees them (no `_`/`.` files or folders), in site order."
    nbs = Path(nbs)
    found = [p for p in nbs.rglob('*.ipynb')
             if not any(part.startswith(('_', '.')) for part in p.relative_to(nbs).parts)]
    def key(p):
        rel = p.relative_to(nbs)
        if rel == Path('index.ipynb'): return (0, '', '')
        if len(rel.parts) == 1: return (2, '', rel.name)  # the API chapters come after the tutorials
        return (1, str(rel.parent), rel.name)
    return sorted(found, key=key)

def page_name(rel):
    "Where nbdev (and so the Quarto site and the doc links in `_modidx.py`) puts a notebook's page."
    return rel.with_name(re.sub(r'^\d+[a-zA-Z0-9]*_', '', rel.name.lower())).with_suffix('.html')

# ---------------------------------------------------------------- nbdev's processing
def _import_only(tree): return bool(tree.body) and all(isinstance(o, (ast.Import, ast.ImportFrom)) for o in tree.body)

def _processors():
    "nbdev's docs processors, with `exec_show_docs` limited to what `show_doc` needs."
    from nbdev import processors as P
    class exec_for_docs(P.exec_show_docs):
        "Run exported cells, import-only cells and `show_doc` cells; leave every other cell's saved outputs."
        def __call__(self, cell):
            if cell.cell_type != 'code' or not cell.source or 'nbdev_export()' in cell.source: return
            if cell.directives_.get('eval:', [''])[0].lower() == 'false': return
            try: tree = ast.parse(cell.source)
            except SyntaxError: return
            run = (cell.directives_.keys() & {'export', 'exports', 'exporti', 'exec_doc'} or _import_only(tree)
                   or P._show_docs(tree.body))
            if run: super().__call__(cell)
    class Filter(P.FilterDefaults):
        def base_procs(self): return [exec_for_docs if p is P.exec_show_docs else p for p in super().base_procs()]
    return Filter()

def process(path):
    "Read the notebook at `path` and run nbdev's docs processors on it, in its own folder (as nbdev_test runs it)."
    from execnb.nbio import read_nb
    nb = read_nb(path)
    cwd = os.getcwd(); os.environ['IN_TEST'] = '1'
    try:
        os.chdir(path.parent)
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            _processors()(nb)
    finally:
        os.chdir(cwd); os.environ.pop('IN_TEST', None)
    return nb

# ---------------------------------------------------------------- from processed notebook to HTML
def _attr_link(m):
    "Pandoc's `[text](url){attrs}` (show_doc's source links) as an HTML link."
    text, url, attrs = m.groups()
    classes = ' '.join(a[1:] for a in attrs.split() if a.startswith('.'))
    kv = ' '.join(re.findall(r'[\w-]+="[^"]*"', attrs))
    if 'float:right' in kv.replace(' ', ''): kv, classes = re.sub(r'style="[^"]*"', '', kv), (classes+' srclink').strip()
    cls = f' class="{classes}"' if classes else ''
    return f'<a href="{html.escape(url)}"{cls} {kv}>{text}</a>'.replace(' >', '>')

def _fix_md(s): return _re_attr_link.sub(_attr_link, s)

def _quarto_opts(src):
    opts = {}
    for line in src.splitlines():
        m = _re_quarto_dir.match(line)
        if m: opts[m.group(1)] = m.group(2).strip('"\'').lower()
        elif line.strip(): break
    return opts

def tidy(nb):
    "Turn what nbdev leaves for Quarto into plain notebook cells: frontmatter out, Quarto options applied."
    import yaml
    from nbformat import from_dict
    fm, cells = {}, []
    for cell in nb.cells:
        src = cell.get('source') or ''
        if cell.cell_type == 'raw' and src.strip().startswith('---'):
            try: fm.update(yaml.safe_load(src.strip().strip('-')) or {})
            except yaml.YAMLError: pass
            continue
        if cell.cell_type == 'markdown':
            if 'THIS FILE WAS AUTOGENERATED' in src: continue
            src = '\n'.join(l for l in src.splitlines() if not re.match(r'^\s*:::', l))  # Quarto fenced divs
            cells.append({'cell_type': 'markdown', 'metadata': {}, 'source': _fix_md(src)}); continue
        if cell.cell_type != 'code': continue
        opts = _quarto_opts(src)
        if opts.get('include') == 'false': continue
        code = _re_dir.sub('', src).strip('\n')
        outputs = [] if opts.get('output') == 'false' else [dict(o) for o in cell.get('outputs', [])]
        for o in outputs:
            if isinstance(o.get('text'), list): o['text'] = ''.join(o['text'])
            if 'data' not in o: continue
            data = {k: ''.join(v) if isinstance(v, list) else v for k, v in o['data'].items()
                    if k != 'application/vnd.jupyter.widget-view+json'}
            if 'text/markdown' in data: data['text/markdown'] = _fix_md(data['text/markdown'])
            o['data'] = data
            o.setdefault('metadata', {})
        meta = {}
        if opts.get('echo') == 'false' or not code: meta['transient'] = {'remove_source': True}
        if opts.get('code-fold') in ('true', 'show') and code:
            summary = html.escape(opts.get('code-summary', 'Code'))
            cells.append({'cell_type': 'markdown', 'metadata': {},
                          'source': f'<details{" open" if opts["code-fold"] == "show" else ""}><summary>{summary}</summary>\n\n'
                                    f'```python\n{code}\n```\n\n</details>'})
            meta['transient'] = {'remove_source': True}
        if not outputs and meta.get('transient'): continue
        cells.append({'cell_type': 'code', 'metadata': meta, 'source': code, 'outputs': outputs, 'execution_count': None})
    for i, c in enumerate(cells): c['id'] = f'cell-{i}'
    nbd = from_dict({'nbformat': 4, 'nbformat_minor': 5, 'cells': cells,
                     'metadata': {'kernelspec': {'name': 'python3', 'language': 'python', 'display_name': 'Python 3'},
                                  'language_info': {'name': 'python', 'pygments_lexer': 'ipython3'}}})
    return fm, nbd

def exporter():
    from nbconvert import HTMLExporter
    ex = HTMLExporter(template_name='basic')
    ex.exclude_input_prompt = ex.exclude_output_prompt = True
    return ex

def _slug(text):
    "Pandoc's identifiers, as the Quarto site and nbdev's doc links use them."
    s = html.unescape(_re_tag.sub('', text)).replace('¶', '').strip().lower()
    s = re.sub(r'[^\w\s.-]', '', s); s = re.sub(r'\s+', '-', s)
    return re.sub(r'^[^a-z]+', '', s) or 'section'

def headings(body):
    "Give every heading a Pandoc id (nbdev's doc links point at them) and list the h2/h3 ones."
    seen, toc = {}, []
    def f(m):
        lvl, inner = m.groups()
        inner = re.sub(r'<a class="anchor-link".*?</a>', '', inner, flags=re.S)
        sid = _slug(inner); n = seen.get(sid, 0); seen[sid] = n + 1
        if n: sid = f'{sid}-{n}'
        if lvl in '23': toc.append((int(lvl), sid, html.unescape(_re_tag.sub('', inner)).strip()))
        return f'<h{lvl} id="{sid}">{inner}<a class="anchor" href="#{sid}">#</a></h{lvl}>'
    return _re_heading.sub(f, body), toc

# ---------------------------------------------------------------- the site
CSS = """
*{box-sizing:border-box}
html{scroll-padding-top:1rem}
body{margin:0;font:16px/1.6 -apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,"Noto Sans","Liberation Sans",sans-serif;color:#212529;background:#fff}
a{color:#2761a8;text-decoration:none} a:hover{text-decoration:underline}
.layout{display:flex;min-height:100vh}
nav.sidebar{flex:0 0 260px;background:#f7f8fa;border-right:1px solid #e3e6ea;padding:1.2rem 1rem;position:sticky;top:0;height:100vh;overflow-y:auto;font-size:.93rem}
nav.sidebar .site{display:block;font-size:1.3rem;font-weight:700;color:#212529;margin-bottom:.2rem}
nav.sidebar .tag{color:#6c757d;font-size:.8rem;line-height:1.35;margin:0 0 1rem}
nav.sidebar h4{margin:1.1rem 0 .3rem;font-size:.75rem;text-transform:uppercase;letter-spacing:.06em;color:#6c757d}
nav.sidebar ul{list-style:none;margin:0;padding:0}
nav.sidebar li a{display:block;padding:.18rem .5rem;border-radius:4px;color:#343a40}
nav.sidebar li a:hover{background:#e9ecef;text-decoration:none}
nav.sidebar li a.active{background:#2761a8;color:#fff}
#search{width:100%;padding:.35rem .5rem;border:1px solid #ced4da;border-radius:4px;font:inherit}
#results{margin:.3rem 0 0}#results li a{font-size:.85rem}#results .where{color:#6c757d;font-size:.75rem}
main{flex:1 1 auto;min-width:0;max-width:880px;padding:1.5rem 2.5rem 4rem}
aside.toc{flex:0 0 220px;padding:1.5rem 1rem;font-size:.85rem;position:sticky;top:0;height:100vh;overflow-y:auto}
aside.toc h4{margin:0 0 .4rem;font-size:.75rem;text-transform:uppercase;letter-spacing:.06em;color:#6c757d}
aside.toc ul{list-style:none;margin:0;padding:0;border-left:1px solid #e3e6ea}
aside.toc li a{display:block;padding:.1rem .7rem;color:#495057}aside.toc li.l3 a{padding-left:1.4rem;font-family:SFMono-Regular,Menlo,Consolas,monospace;font-size:.8rem}
@media (max-width:1200px){aside.toc{display:none}}
@media (max-width:800px){.layout{display:block}nav.sidebar{position:static;height:auto;border-right:0;border-bottom:1px solid #e3e6ea}main{padding:1rem}}
header.title h1{margin:.2rem 0 .3rem;font-size:2.1rem;line-height:1.2}
header.title p.description{margin:0 0 1.5rem;font-size:1.15rem;color:#6c757d}
header.title{border-bottom:1px solid #e3e6ea;margin-bottom:1.2rem}
h2{margin-top:2rem;padding-bottom:.2rem;border-bottom:1px solid #eef0f2;font-size:1.5rem}
h3{margin-top:1.5rem;font-size:1.2rem}
h1 a.anchor,h2 a.anchor,h3 a.anchor,h4 a.anchor,h5 a.anchor,h6 a.anchor{visibility:hidden;margin-left:.4rem;color:#adb5bd;font-weight:400}
h1:hover a.anchor,h2:hover a.anchor,h3:hover a.anchor,h4:hover a.anchor{visibility:visible}
code{font-family:SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace;font-size:.87em;background:#f3f4f6;padding:.1em .3em;border-radius:3px;color:#9a2a5a}
a code{color:inherit}
pre{font-family:SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace;font-size:.85rem;line-height:1.45;overflow-x:auto;margin:0}
pre code{background:none;padding:0;color:inherit;font-size:inherit}
.cell{margin:.9rem 0}
.input_area,.rendered_html .highlight,.text_cell_render .highlight{background:#f6f8fa;border:1px solid #e5e8eb;border-radius:6px;padding:.6rem .8rem}
.input_area .highlight{background:none;border:0;padding:0}
.output_text pre{padding:.4rem .8rem;border-left:3px solid #f4b183;background:none;margin:.2rem 0 0 .8rem}
.output_area img{max-width:100%;height:auto;margin:.3rem 0 0 .8rem}
.output_stderr pre{background:#fff5f5}
.output_markdown .highlight{margin:.4rem 0;background:#f2f6fb;border-color:#d9e3ef}
.output_markdown hr{border:0;border-top:1px solid #dee2e6;margin:1.8rem 0 .6rem}
.output_markdown h3,.output_markdown h4{font-family:SFMono-Regular,Menlo,Consolas,monospace;margin-top:.4rem;font-size:1.15rem}
.output_markdown em{color:#444}
a.srclink{float:right;font-size:smaller}
table{border-collapse:collapse;margin:.6rem 0;font-size:.9rem}
th,td{border:1px solid #dee2e6;padding:.3rem .6rem;text-align:left;vertical-align:top}
thead th{background:#f3f4f6}
.output_html table{font-size:.85rem}
blockquote{margin:1rem 0;padding:.2rem 1rem;border-left:4px solid #cfe2ff;background:#f4f8ff;color:#364a63}
details{margin:.5rem 0}summary{cursor:pointer;color:#6c757d;font-size:.9rem}
footer{margin-top:3rem;padding-top:.8rem;border-top:1px solid #e3e6ea;font-size:.8rem;color:#6c757d;display:flex;justify-content:space-between}
.pages li{margin:.4rem 0}.pages .desc{color:#6c757d}
"""

SEARCH_JS = """(function(){
var box=document.getElementById('search'),out=document.getElementById('results'),root=box.getAttribute('data-root');
function esc(s){return s.replace(/[&<>"]/g,function(c){return {'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c];});}
box.addEventListener('input',function(){
  var q=box.value.trim().toLowerCase(),hits=[];out.innerHTML='';if(q.length<2)return;
  SEARCH_INDEX.forEach(function(e){var t=e.t.toLowerCase(),s=(e.x||'').toLowerCase(),i=t.indexOf(q);
    if(i>=0)hits.push([i===0?0:1,e]);else if(s.indexOf(q)>=0)hits.push([2,e]);});
  hits.sort(function(a,b){return a[0]-b[0];}).slice(0,15).forEach(function(h){var e=h[1];
    out.insertAdjacentHTML('beforeend','<li><a href="'+root+e.u+'">'+esc(e.t)+' <span class="where">'+esc(e.p)+'</span></a></li>');});
  if(!hits.length)out.innerHTML='<li class="where">no match</li>';
});})();
"""

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{plain_title} – {site}</title>
<meta name="description" content="{desc_attr}">
<link rel="stylesheet" href="{root}site.css"><link rel="stylesheet" href="{root}pygments.css">{math}
</head><body><div class="layout">
<nav class="sidebar"><a class="site" href="{root}index.html">{site}</a><p class="tag">{tagline}</p>
<input id="search" type="search" placeholder="Search" aria-label="Search" data-root="{root}"><ul id="results"></ul>
{nav}</nav>
<main>
<header class="title"><h1>{title}</h1>{description}</header>
{body}
<footer><span>{prev}</span><span>{next}</span></footer>
</main>
{toc}</div>
<script src="{root}search.js"></script><script src="{root}search-index.js"></script>
</body></html>
"""

MATHJAX = ('\n<script>window.MathJax={tex:{inlineMath:[["$","$"],["\\\\(","\\\\)"]]}};</script>'
           '\n<script async src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js"></script>')

def _rel(frm, to):
    "Relative link from page `frm` to page `to` (both relative to the site root)."
    return os.path.relpath(to, frm.parent).replace(os.sep, '/')

def nav_html(pages, here):
    "The sidebar: home, then one section per folder (tutorials first), then the API chapters."
    out, section = [], None
    for p in pages:
        sec = p['section']
        if sec != section:
            if section is not None or out: out.append('</ul>')
            if sec: out.append(f'<h4>{html.escape(sec)}</h4>')
            out.append('<ul>'); section = sec
        cls = ' class="active"' if p['url'] == here else ''
        label = 'Home' if p['url'] == Path('index.html') else _inline(p['title'])
        out.append(f'<li><a href="{_rel(here, p["url"])}"{cls}>{label}</a></li>')
    return '\n'.join(out + ['</ul>'])

def localise(body, here, base):
    "Links to the published site (nbdev's doc links) become links to this copy's pages."
    if not base: return body
    root = _rel(here, Path('index.html'))[:-len('index.html')]
    return re.sub(r'(href=")' + re.escape(base) + r'/?', lambda m: m.group(1) + root, body)

def _inline(s):
    "A title as HTML: escaped, with `code` in backticks shown as code."
    return re.sub(r'`([^`]+)`', r'<code>\1</code>', html.escape(s))

def _plain(s): return s.replace('`', '')

def _text(body): return re.sub(r'\s+', ' ', html.unescape(_re_tag.sub(' ', body))).strip()

def build(out, nbs=None, quiet=False):
    "Build the site from the notebooks in `nbs` into `out`; return the list of notebooks that failed."
    t0 = time.time()
    os.chdir(ROOT)  # nbdev finds settings.ini from here
    cfg = settings()
    nbs = Path(nbs or ROOT/cfg.get('nbs_path', 'nbs')).resolve()
    site, tagline = cfg.get('title', cfg['lib_name']), cfg.get('description', '')
    base = (cfg.get('doc_host', '').rstrip('/') + '/' + cfg.get('doc_baseurl', '').strip('/')).rstrip('/')
    out = Path(out).resolve(); out.parent.mkdir(parents=True, exist_ok=True)
    built = (out/MARK).exists() or ((out/'site.css').exists() and (out/'search-index.js').exists())  # by this script
    if out.exists() and any(out.iterdir()) and not built:
        sys.exit(f'docs: {out} holds files that no docs build made; it is replaced at each build, so choose an empty or new folder')
    tmp = Path(tempfile.mkdtemp(prefix='.' + out.name + '-', dir=out.parent))
    ex, pages, failed = exporter(), [], []
    try:
        for path in find_notebooks(nbs):
            rel = path.relative_to(nbs)
            t = time.time()
            try:
                fm, nb = tidy(process(path))
                body, res = ex.from_notebook_node(nb)
            except Exception as e:
                failed.append(rel); print(f'docs: {rel}: {type(e).__name__}: {e}', file=sys.stderr)
                if e.__cause__: print(f'  caused by {type(e.__cause__).__name__}: {e.__cause__}', file=sys.stderr)
                continue
            url = page_name(rel)
            section = '' if len(rel.parts) == 1 and rel.name == 'index.ipynb' else (
                      rel.parts[0].replace('_', ' ').capitalize() if len(rel.parts) > 1 else 'API reference')
            title = str(fm.get('title') or (site if url.name == 'index.html' else path.stem))
            pages.append(dict(rel=rel, url=url, title=title, desc=str(fm.get('description', '') or ''),
                              section=section, body=body, math='$' in ''.join(c.source for c in nb.cells if c.cell_type == 'markdown')))
            if not quiet: print(f'docs: {rel} -> {url} ({time.time()-t:.1f}s)')
        if not any(p['url'] == Path('index.html') for p in pages):  # no index.ipynb (yet): a home page listing the others
            items = '\n'.join(f'<li><a href="{p["url"].as_posix()}">{_inline(p["title"])}</a>'
                              f'{" – <span class=desc>" + _inline(p["desc"]) + "</span>" if p["desc"] else ""}</li>' for p in pages)
            pages.insert(0, dict(rel=None, url=Path('index.html'), title=site, desc=tagline, section='', math=False,
                                 body=f'<ul class="pages">\n{items}\n</ul>'))
        from pygments.formatters import HtmlFormatter
        (tmp/'site.css').write_text(CSS.lstrip(), encoding='utf-8')
        (tmp/'pygments.css').write_text(HtmlFormatter(style='default').get_style_defs('.highlight'), encoding='utf-8')
        (tmp/'search.js').write_text(SEARCH_JS, encoding='utf-8')
        index = []
        for i, p in enumerate(pages):
            here = p['url']; root = _rel(here, Path('index.html'))[:-len('index.html')]
            body, toc = headings(localise(p['body'], here, base))
            prv, nxt = (pages[i-1] if i else None), (pages[i+1] if i+1 < len(pages) else None)
            label = lambda q: 'Home' if q['url'] == Path('index.html') else _inline(q['title'])
            link = lambda q, arrow: (f'<a href="{_rel(here, q["url"])}">{arrow[0]}{label(q)}{arrow[1]}</a>' if q else '')
            toc_html = ('<aside class="toc"><h4>On this page</h4><ul>' + ''.join(
                f'<li class="l{lvl}"><a href="#{sid}">{html.escape(txt)}</a></li>' for lvl, sid, txt in toc) + '</ul></aside>') if toc else ''
            page = PAGE.format(title=_inline(p['title']), plain_title=html.escape(_plain(p['title'])),
                               site=html.escape(site), tagline=html.escape(tagline),
                               desc_attr=html.escape(_plain(p['desc'])), root=root, nav=nav_html(pages, here), body=body,
                               description=f'<p class="description">{_inline(p["desc"])}</p>' if p['desc'] else '',
                               prev=link(prv, ('← ', '')), next=link(nxt, ('', ' →')), toc=toc_html,
                               math=MATHJAX if p['math'] else '')
            dst = tmp/here; dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_text(page, encoding='utf-8')
            u = here.as_posix()
            index.append(dict(t=_plain(p['title']), u=u, p=p['section'] or 'home', x=_plain(p['desc'])))
            index += [dict(t=txt, u=f'{u}#{sid}', p=_plain(p['title'])) for lvl, sid, txt in toc]
        (tmp/'search-index.js').write_text('var SEARCH_INDEX=' + json.dumps(index, ensure_ascii=False) + ';\n', encoding='utf-8')
        for p in pages:  # the image files the pages show (not every picture lying under nbs/, such as run folders)
            src_dir = nbs/(p['rel'].parent if p['rel'] else Path())
            for src in set(_re_img.findall(p['body'])):
                f = (src_dir/src).resolve()
                if f.suffix.lower() in ASSETS and f.is_file() and f.is_relative_to(nbs):
                    dst = tmp/p['url'].parent/src; dst.parent.mkdir(parents=True, exist_ok=True); shutil.copy2(f, dst)
        (tmp/MARK).write_text('built by .ci/docs.py; the whole folder is replaced at the next build\n')
        if out.exists(): shutil.rmtree(out)
        tmp.rename(out)
    finally:
        if tmp.exists(): shutil.rmtree(tmp, ignore_errors=True)
    if not quiet: print(f'docs: {len(pages)} pages in {out} ({time.time()-t0:.1f}s)')
    return failed

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--out', default=None, help='output folder (default: doc_path in settings.ini, _docs)')
    ap.add_argument('--nbs', default=None, help='notebook folder (default: nbs_path in settings.ini, nbs)')
    ap.add_argument('-q', '--quiet', action='store_true')
    a = ap.parse_args()
    out = Path(a.out) if a.out else ROOT/settings().get('doc_path', '_docs')
    if a.nbs: a.nbs = Path(a.nbs).resolve()
    failed = build(out.resolve(), a.nbs, a.quiet)
    if failed:
        print(f'docs: {len(failed)} notebook(s) could not be rendered: {", ".join(map(str, failed))}; '
              'run them with nbdev_test to see why', file=sys.stderr)
        sys.exit(1)

if __name__ == '__main__': main()
