"""Packaging for mriseg: reads settings.ini, as nbdev 2's template does, without pkg_resources.

The app's viewer, NiiVue, is fetched from the npm registry when the package is built (`build_py`), at the version and
checksum pinned below, and shipped inside the wheel; it is never committed. `python setup.py niivue` fetches it into a
checkout (`make` does this for the dev install)."""
import base64, hashlib, io, json, os, tarfile, urllib.request
from configparser import ConfigParser
from pathlib import Path
import setuptools
from setuptools.command.build_py import build_py

here = Path(__file__).parent
cfg = ConfigParser(delimiters=['='])
cfg.read(here/'settings.ini', encoding='utf-8')
cfg = cfg['DEFAULT']

licenses = {'apache2': ('Apache Software License 2.0', 'OSI Approved :: Apache Software License')}
statuses = ['1 - Planning', '2 - Pre-Alpha', '3 - Alpha', '4 - Beta', '5 - Production/Stable', '6 - Mature', '7 - Inactive']
py_versions = '3.10 3.11 3.12 3.13'.split()
min_python = cfg['min_python']
lic = licenses[cfg['license']]
requirements = cfg.get('requirements', '').split()
dev_requirements = cfg.get('dev_requirements', '').split()
app_requirements = cfg.get('app_requirements', '').split()
dicom_requirements = cfg.get('dicom_requirements', '').split()
scripts = [s.strip() for s in cfg.get('console_scripts', '').split('\n') if s.strip()]

NIIVUE = dict(version='0.69.0', url='https://registry.npmjs.org/@niivue/niivue/-/niivue-0.69.0.tgz',
              integrity='sha512-YMjQvJgD1W2b7DuoxkwlC4VxbrgIePRJ5qyQzXKxi2v2MBVg285P/CIQyg46oDDGDIcaNlbd+MhtO/edMbXJkA==',
              member='package/dist/index.js', to=here/'mriseg'/'static'/'niivue.js')

def fetch_niivue(force=False):
    "Put NiiVue's self-contained ES module at NIIVUE['to'], from the npm registry, its checksum checked."
    dst = NIIVUE['to']
    if dst.exists() and not force: return dst
    print(f"fetching NiiVue {NIIVUE['version']} from {NIIVUE['url']}")
    with urllib.request.urlopen(NIIVUE['url'], timeout=120) as r: data = r.read()
    algo, digest = NIIVUE['integrity'].split('-', 1)
    if base64.b64encode(hashlib.new(algo, data).digest()).decode() != digest:
        raise SystemExit(f"{NIIVUE['url']}: its checksum is not the pinned one ({NIIVUE['integrity']}); not used.")
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        js = t.extractfile(NIIVUE['member']).read()
        meta = json.loads(t.extractfile('package/package.json').read())
    notice = (f"NiiVue {meta['version']} ({meta.get('homepage', 'https://github.com/niivue/niivue')}), "
              f"license {meta.get('license')}: {NIIVUE['member']} of {NIIVUE['url']} ({NIIVUE['integrity']}).\n")
    for path, body in ((dst, js), (dst.with_name('NIIVUE.txt'), notice.encode())):
        tmp = path.with_name(f'.{path.name}.{os.getpid()}')
        tmp.write_bytes(body); os.replace(tmp, path)
    return dst

class BuildWithViewer(build_py):
    "build_py that fetches the viewer first."
    def run(self): fetch_niivue(); super().run()

class FetchViewer(setuptools.Command):
    "Fetch NiiVue into mriseg/static (for a checkout installed in editable mode)."
    user_options = []
    def initialize_options(self): pass
    def finalize_options(self): pass
    def run(self): fetch_niivue()

setuptools.setup(
    name=cfg['lib_name'], version=cfg['version'],
    license=lic[0], description=cfg['description'],
    long_description=(here/'README.md').read_text(encoding='utf-8'),
    long_description_content_type='text/markdown',
    author=cfg['author'], author_email=cfg['author_email'],
    url=cfg['git_url'], keywords=cfg['keywords'].split(),
    classifiers=['Development Status :: ' + statuses[int(cfg['status'])],
                 'Intended Audience :: ' + cfg['audience'].title(),
                 'License :: ' + lic[1], 'Natural Language :: ' + cfg['language'].title()]
                + ['Programming Language :: Python :: ' + v for v in py_versions[py_versions.index(min_python):]],
    packages=setuptools.find_packages(include=['mriseg', 'mriseg.*']),
    include_package_data=True, zip_safe=False, package_data={'mriseg': ['static/*']},
    install_requires=requirements, extras_require={'dev': dev_requirements + app_requirements + dicom_requirements, 'app': app_requirements,
                    'dicom': dicom_requirements},
    cmdclass={'build_py': BuildWithViewer, 'niivue': FetchViewer},
    python_requires='>=' + min_python,
    entry_points={'console_scripts': scripts, 'nbdev': [f"{cfg['lib_path']}={cfg['lib_path']}._modidx:d"]},
)
