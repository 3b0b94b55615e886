"""Makes the venv that checks the built wheel, sharing the dev venv's torch instead of installing a second copy.

Run it with the dev venv's python: `.venv/bin/python .ci/wheel_venv.py .venv-wheel`.
torch, torchvision, triton and the CUDA libraries they pull in take ~5.5 GB; a second copy does not fit on every CI
disk. They are linked from the dev venv into a folder beside the new venv (`<venv>-torch/`) and put on its path by a
`.pth` file, after its own site-packages. pip in the new venv sees them as installed (so it installs nothing of
theirs) and will not uninstall them (they lie outside its environment); everything else, fastai included, is
installed fresh by pip into the new venv.
"""
import importlib.metadata as md, os, re, subprocess, sys
from pathlib import Path

def shared(dist_name: str) -> bool:
    n = re.sub(r'[-_.]+', '-', dist_name).lower()
    return n in ('torch', 'torchvision', 'triton') or n.startswith(('nvidia-', 'cuda-'))

def top_level(dist):
    "The site-packages entries a distribution installs (its packages, modules and dist-info)."
    return {Path(f).parts[0] for f in dist.files or [] if Path(f).parts and Path(f).parts[0] != '..'}

def main(venv):
    venv = Path(venv).absolute()
    farm = venv.with_name(venv.name + '-torch')
    dists = [d for d in md.distributions() if shared(d.metadata['Name'])]
    if not any(re.sub(r'[-_.]+', '-', d.metadata['Name']).lower() == 'torch' for d in dists):
        sys.exit(f'{sys.executable}: torch is not installed in this venv; run `make test` (it installs it first)')
    farm.mkdir(exist_ok=True)
    for d in dists:
        site = Path(d.locate_file(''))
        for entry in top_level(d):
            link = farm/entry
            if not link.is_symlink(): link.symlink_to(site/entry)
    subprocess.run([sys._base_executable, '-m', 'venv', venv], check=True)
    purelib = subprocess.run([venv/'bin'/'python', '-c', "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    (Path(purelib)/'_shared_torch.pth').write_text(f'{farm}\n')
    print(f'{venv}: new venv sharing {len(dists)} distributions (torch, torchvision, CUDA) from {farm}')

if __name__ == '__main__': main(sys.argv[1] if len(sys.argv) > 1 else '.venv-wheel')
