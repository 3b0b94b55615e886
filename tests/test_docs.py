"""The docs site as a reader gets it: `.ci/docs.py` builds it from the notebooks (without Quarto) into a temp folder."""
import base64, html, importlib.util, inspect, json, re, subprocess, sys
from pathlib import Path
import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

ROOT = Path(__file__).parents[1]
BUILDER = ROOT/'.ci'/'docs.py'
_spec = importlib.util.spec_from_file_location('mriseg_docs', BUILDER)
docs = importlib.util.module_from_spec(_spec); _spec.loader.exec_module(docs)  # for find_notebooks and page_name

def build(out, nbs=None, ok=True):
    cmd = [sys.executable, str(BUILDER), '--out', str(out), '-q'] + (['--nbs', str(nbs)] if nbs else [])
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if ok: assert r.returncode == 0, r.stderr
    return r

def text(page):
    "What a reader sees: tags dropped (code highlighting splits no characters), entities decoded, spaces collapsed."
    return ' '.join(html.unescape(re.sub(r'<[^>]+>', '', page)).split())

def nav(page): return re.findall(r'href="([^"]+)"', re.search(r'<nav class="sidebar">(.*?)</nav>', page, re.S).group(1))

def local_links(page):
    return [h.split('#')[0] for h in re.findall(r'href="([^"]+)"', page)
            if not re.match(r'(https?:|mailto:|#)', h) and h.split('#')[0]]

def hidden_code(nb_path):
    "The code of each `#| hide` cell, as it would read on a page."
    nb = nbformat.read(nb_path, as_version=4)
    for c in nb.cells:
        if c.cell_type == 'code' and re.search(r'^\s*#\|\s*hide\s*$', c.source, re.M):
            code = ' '.join(l for l in c.source.splitlines() if not l.lstrip().startswith('#|'))
            if code.strip(): yield ' '.join(code.split())

def check_site(site, pages):
    "Every page exists, the sidebar lists them all in order on every page, and every local link resolves."
    urls = [p.as_posix() for p in pages]
    for u in urls:
        page = (site/u).read_text(encoding='utf-8')
        links = nav(page)
        resolved = [(site/u).parent.joinpath(h).resolve() for h in links]
        assert [str(r.relative_to(site.resolve()).as_posix()) for r in resolved[1:]] == urls, u  # [0]: the site name
        for h in local_links(page): assert ((site/u).parent/h).exists(), f'{u}: broken link {h}'
        assert '#|' not in text(page) and 'nbdev_export()' not in page, u

def test_site_from_the_notebooks(tmp_path):
    nbs = ROOT/'nbs'
    notebooks = docs.find_notebooks(nbs)
    site = tmp_path/'site'
    build(site)
    pages = [docs.page_name(p.relative_to(nbs)) for p in notebooks]
    for p in pages: assert (site/p).exists(), f'no page for {p}'
    order = [Path('index.html')] + [p for p in pages if p != Path('index.html')]
    built = [(site/u).resolve().relative_to(site.resolve()) for u in nav((site/'index.html').read_text())[1:]]
    for p in order: assert p in built, f'{p} missing from the sidebar'
    check_site(site, built)
    tut = [i for i, p in enumerate(built) if p.parts[0] == 'tutorials']
    api = [i for i, p in enumerate(built) if len(p.parts) == 1 and p.name != 'index.html']
    assert built[0] == Path('index.html') and (not tut or not api or max(tut) < min(api))
    for nb in notebooks:  # hidden cells never reach a page
        page = text((site/docs.page_name(nb.relative_to(nbs))).read_text(encoding='utf-8'))
        for code in hidden_code(nb): assert code not in page, f'{nb.name}: hidden cell shown: {code[:80]}'
    # the API page of mriseg.io: show_doc's signature and docstring of read_case, under its own heading
    from mriseg.io import read_case
    io = (site/'io.html').read_text(encoding='utf-8')
    assert '<h3 id="read_case">' in io
    t = text(io)
    sig = ', '.join(inspect.signature(read_case).parameters)
    assert f'def read_case( {sig} )' in t
    assert ' '.join(read_case.__doc__.replace('`', '').split()) in t
    assert '<title>Reading and writing NIfTI' in io and 'import gzip' not in t  # title cell; exported imports hidden
    assert 'href="https://mriseg.github.io' not in io  # doc links point at this copy

TINY_PNG = base64.b64encode(bytes.fromhex(
    '89504e470d0a1a0a0000000d4948445200000001000000010806000000'
    '1f15c4890000000d49444154789c63f8cfc0f01f0005000201a5e0b4f50000000049454e44ae426082')).decode()

def _nb(cells, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(new_notebook(cells=cells), path)

def test_saved_outputs_kept_and_cells_not_run(tmp_path):
    nbs, ran = tmp_path/'nbs', tmp_path/'ran'
    _nb([new_markdown_cell('# Demo site\n\n> The home page')], nbs/'index.ipynb')
    _nb([new_markdown_cell('# First steps\n\n> A tutorial'),
         new_code_cell("print('saved output')", outputs=[new_output('stream', name='stdout', text='saved output 42\n')]),
         new_code_cell('plot()', outputs=[new_output('display_data', data={'image/png': TINY_PNG, 'text/plain': '<Figure>'})]),
         new_code_cell('#| hide\nsecret_hidden_value = 1'),
         new_code_cell("#| echo: false\nshow_only_the_output()", outputs=[new_output('stream', name='stdout', text='only the output\n')])],
        nbs/'tutorials'/'first.ipynb')
    _nb([new_code_cell('#| default_exp demo'),
         new_markdown_cell('# Demo module\n\n> What `greet` is for'),
         new_code_cell('#| export\ndef greet(name:str, # who to greet\n         ): "Say hello to `name`."; return f"hello {name}"'),
         new_code_cell(f'import pathlib\npathlib.Path({str(ran)!r}).write_text("ran")'),
         new_code_cell('#| hide\nimport nbdev; nbdev.nbdev_export()')],
        nbs/'00_demo.ipynb')
    site = tmp_path/'site'
    build(site, nbs)
    check_site(site, [Path('index.html'), Path('tutorials/first.html'), Path('demo.html')])
    home, first, demo = [(site/p).read_text(encoding='utf-8') for p in ('index.html', 'tutorials/first.html', 'demo.html')]
    assert '<h1>Demo site</h1>' in home and 'The home page' in home
    assert '<h1>First steps</h1>' in first and 'saved output 42' in first
    assert f'data:image/png;base64,{TINY_PNG}' in first
    assert 'secret_hidden_value' not in first
    assert 'only the output' in first and 'show_only_the_output' not in first
    assert not ran.exists(), 'a code cell that show_doc does not need was run'
    t = text(demo)
    assert '<h3 id="greet">' in demo and 'def greet( name:str, # who to greet )' in t and 'Say hello to name' in t
    assert 'return f' not in t  # the exported cell itself is not shown
    index = (site/'search-index.js').read_text(encoding='utf-8')
    entries = json.loads(index[index.index('['):index.rindex(']')+1])
    assert {'t': 'greet', 'u': 'demo.html#greet', 'p': 'Demo module'} in entries

def test_broken_notebook_fails_the_build(tmp_path):
    nbs = tmp_path/'nbs'
    _nb([new_code_cell('#| default_exp broken'), new_markdown_cell('# Broken\n\n> Does not import'),
         new_code_cell('#| export\nimport no_such_module_here')], nbs/'00_broken.ipynb')
    r = build(tmp_path/'site', nbs, ok=False)
    assert r.returncode == 1 and '00_broken.ipynb' in r.stderr and 'no_such_module_here' in r.stderr

def test_images_and_the_output_folder(tmp_path):
    "The pictures the pages show are copied, other files under nbs/ are not; a folder the builder did not make is kept."
    nbs, png = tmp_path/'nbs', base64.b64decode(TINY_PNG)
    (nbs/'tutorials'/'img').mkdir(parents=True); (nbs/'tutorials'/'runs').mkdir()
    (nbs/'tutorials'/'img'/'brain.png').write_bytes(png); (nbs/'tutorials'/'runs'/'curves.png').write_bytes(png)
    _nb([new_markdown_cell('# Home')], nbs/'index.ipynb')
    _nb([new_markdown_cell('# Pictures'), new_markdown_cell('![a brain](img/brain.png)')], nbs/'tutorials'/'pics.ipynb')
    site = tmp_path/'site'
    build(site, nbs)
    assert 'src="img/brain.png"' in (site/'tutorials'/'pics.html').read_text(encoding='utf-8')
    assert (site/'tutorials'/'img'/'brain.png').read_bytes() == png   # shown, so copied
    assert not (site/'tutorials'/'runs').exists()                      # lying there, not shown: left out
    build(site, nbs)                                                    # a site it built is rebuilt in place
    mine = tmp_path/'mine'; mine.mkdir(); (mine/'notes.txt').write_text('mine')
    r = build(mine, nbs, ok=False)
    assert r.returncode != 0 and 'holds files that no docs build made' in r.stderr
    assert [p.name for p in mine.iterdir()] == ['notes.txt']
