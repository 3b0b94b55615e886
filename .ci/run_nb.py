"""Runs notebooks top to bottom and saves their outputs in place, for the docs: the figures a reader sees.

Usage: `.venv/bin/python .ci/run_nb.py nbs/04_data.ipynb [...]`, then `.venv/bin/nbdev_clean`.
Cells carrying a flag in settings.ini's `tst_flags` (slow, cuda, notest) are skipped and keep the outputs they had,
as the tests skip them; `MRISEG_RUN_FLAGS="slow"` runs those flags too. Unlike the tests, IN_TEST is not set, so
the tutorials run at their full settings. A notebook is written only when every cell ran.
"""
import os, sys
from configparser import ConfigParser
from pathlib import Path
from execnb.nbio import read_nb, write_nb
from execnb.shell import CaptureShell
from nbdev.process import extract_directives

ROOT = Path(__file__).parents[1]

def skip_flags():
    cfg = ConfigParser(); cfg.read(ROOT/'settings.ini')
    return set(cfg['DEFAULT'].get('tst_flags', '').split()) - set(os.environ.get('MRISEG_RUN_FLAGS', '').split())

def run(path):
    path, flags = Path(path).absolute(), skip_flags()
    nb = read_nb(path)
    def skip(cell):
        if cell.cell_type != 'code' or 'nbdev_export(' in cell.source: return True
        return bool(flags & set(extract_directives(cell, remove=False)))
    shell, cwd = CaptureShell(path), os.getcwd()
    os.chdir(path.parent)
    shell.run("import warnings; warnings.simplefilter('ignore', FutureWarning); warnings.simplefilter('ignore', DeprecationWarning)")
    try: shell.run_all(nb, exc_stop=True, preproc=skip)
    except Exception:
        sys.stderr.write(shell.prettytb(fname=path) + '\n')
        sys.exit(f'{path}: a cell failed; the notebook is unchanged')
    finally: os.chdir(cwd)
    write_nb(nb, path)
    print(f'{path}: ran and saved (skipped cells flagged {", ".join(sorted(flags))})')

if __name__ == '__main__':
    if len(sys.argv) < 2: sys.exit(__doc__)
    for p in sys.argv[1:]: run(p)
