"""The tutorials' saved outputs are what readers see: they must come from the library as it is now.

Each tutorial that trains on the phantom records, in a hidden cell's output, the fingerprint of what its numbers depend
on (`mriseg.settings.fingerprint`: the preset's settings, the phantom generator's and the preprocessing's versions).
When the preset or the generator changes, this test fails until `make tutorials` has run them again, in order."""
import json, re
from pathlib import Path
import pytest
from mriseg.settings import fingerprint

ROOT = Path(__file__).parents[1]
TRAINED = ['01_ten_minutes', '03_widgets', '04_reading_metrics', '05_which_network', '06_the_app', '07_from_the_scanner']  # their numbers come from training
MARK = re.compile(r'outputs of preset (\w+), fingerprint (\w+)')

def recorded(path):
    "The (preset, fingerprint) pairs a notebook's saved outputs record."
    nb = json.loads(path.read_text())
    texts = [''.join(o.get('text', '')) for c in nb['cells'] if c['cell_type'] == 'code' for o in c.get('outputs', [])]
    return [m.groups() for t in texts for m in MARK.finditer(t)]

@pytest.mark.parametrize('name', TRAINED)
def test_tutorial_outputs_are_current(name):
    marks = recorded(ROOT/'nbs'/'tutorials'/f'{name}.ipynb')
    assert marks, f'{name}: no recorded fingerprint; a hidden cell must print the preset and its mriseg.settings.fingerprint'
    for preset, fp in marks:
        assert fp == fingerprint(preset), (f'{name}: its saved outputs were made with another preset or phantom '
                                           f'(fingerprint {fp}, now {fingerprint(preset)}); run `make tutorials`')

def test_marks_are_read():
    assert MARK.findall('outputs of preset cpu, fingerprint 0123456789') == [('cpu', '0123456789')]
