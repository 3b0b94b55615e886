"""Runs notebooks top to bottom in a Jupyter kernel and saves their outputs in place, for the docs: the figures,
tables and progress bars a reader sees.

Usage: `.venv/bin/python .ci/run_nb.py nbs/06_data.ipynb [...]`, then `.venv/bin/nbdev_clean`.
Cells carrying a flag in settings.ini's `tst_flags` (slow, cuda, notest) are skipped and keep the outputs they had,
as the tests skip them; `MRISEG_RUN_FLAGS="slow"` runs those flags too. Unlike the tests, IN_TEST is not set, so
the tutorials run at their full settings. A notebook is written only when every cell ran.
"""
import os, sys
from configparser import ConfigParser
from pathlib import Path
import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from nbdev.process import extract_directives

ROOT = Path(__file__).parents[1]

def skip_flags():
    cfg = ConfigParser(); cfg.read(ROOT/'settings.ini')
    return set(cfg['DEFAULT'].get('tst_flags', '').split()) - set(os.environ.get('MRISEG_RUN_FLAGS', '').split())

class FlaggedClient(NotebookClient):
    "Runs every code cell but those carrying one of `flags` (and the `nbdev_export()` cell)."
    flags = set()
    async def async_execute_cell(self, cell, cell_index, execution_count=None, store_history=True):
        if cell.cell_type == 'code' and ('nbdev_export(' in cell.source or self.flags & set(extract_directives(cell, remove=False))):
            return cell
        return await super().async_execute_cell(cell, cell_index, execution_count, store_history)

def run(path):
    path, flags = Path(path).absolute(), skip_flags()
    nb = nbformat.read(path, as_version=4)
    client = FlaggedClient(nb, timeout=3600, kernel_name='python3', resources={'metadata': {'path': str(path.parent)}})
    client.flags = flags
    env = {k: v for k, v in os.environ.items() if k != 'IN_TEST'}
    os.environ.clear(); os.environ.update(env)  # the kernel inherits this environment
    try: client.execute()
    except CellExecutionError as e: sys.exit(f'{path}: a cell failed; the notebook is unchanged\n{e}')
    nbformat.write(nb, path)
    print(f'{path}: ran and saved (skipped cells flagged {", ".join(sorted(flags))})')

if __name__ == '__main__':
    if len(sys.argv) < 2: sys.exit(__doc__)
    for p in sys.argv[1:]: run(p)
