"""How the library is built: each module imports only the chapters before it, no private name crosses a module, and
predicting never loads training."""
import ast, json, re, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).parents[1]

def chapters():
    "Module names in the order of their notebooks (nbs/NN_name.ipynb, by file name)."
    order = []
    for nb in sorted((ROOT/'nbs').glob('*.ipynb')):
        src = ''.join(json.loads(nb.read_text())['cells'][0]['source'])
        m = re.search(r'#\|\s*default_exp\s+(\w+)', src)
        if m: order.append(m.group(1))
    return order

def imports(module):
    "(mriseg module, names) of each `from mriseg.X import ...` / `from .X import ...` in the generated module."
    tree = ast.parse((ROOT/'mriseg'/f'{module}.py').read_text())
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            name = node.module[len('mriseg.'):] if node.module.startswith('mriseg.') else node.module if node.level else None
            if name: out.append((name, [a.name for a in node.names]))
    return out

def test_imports_only_go_down():
    order = chapters()
    assert {'runtime', 'splits', 'settings', 'run'} <= set(order)
    bad = [(m, dep) for m in order for dep, _ in imports(m) if dep in order and order.index(dep) >= order.index(m)]
    assert not bad, f'modules importing a later chapter: {bad}'

def test_no_private_name_crosses_a_module():
    bad = [(m, dep, n) for m in chapters() for dep, names in imports(m) for n in names if n.startswith('_')]
    assert not bad, bad

def test_predicting_does_not_load_training():
    code = 'import sys, mriseg.inference, mriseg.run; print(sorted(m for m in sys.modules if m.startswith("mriseg.")))'
    loaded = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True).stdout
    assert 'mriseg.train' not in loaded and 'mriseg.protocol' not in loaded, loaded
