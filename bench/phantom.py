"""Time `make_phantom_cohort`: N full-size phantom cases written as .nii.gz into a temporary folder.

Prints the seconds in all and per case, and writes them with the machine's details to
bench/results/phantom.json (or --out). Usage: python bench/phantom.py [--n 40] [--workers W] [--shape 240 240 155]
"""
import argparse, json, os, platform, tempfile, time
from pathlib import Path
import numpy as np, scipy



from _common import cpu_model  # bench/ is on sys.path when a script runs

def folder_mb(path):
    return sum(f.stat().st_size for f in Path(path).rglob('*') if f.is_file())/2**20


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--n', type=int, default=40, help='cases to make')
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--workers', type=int, default=None, help='processes (default: every core)')
    ap.add_argument('--shape', type=int, nargs=3, default=(240, 240, 155))
    ap.add_argument('--out', default=str(Path(__file__).parent/'results'/'phantom.json'))
    a = ap.parse_args()
    from mriseg.phantom import make_phantom_cohort, mni_anatomy
    t0 = time.perf_counter(); mni_anatomy(); t_load = time.perf_counter() - t0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()
    load_before = os.getloadavg() if hasattr(os, 'getloadavg') else None
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        make_phantom_cohort(d, n=a.n, seed=a.seed, shape=tuple(a.shape), n_workers=a.workers)
        secs = time.perf_counter() - t0
        mb = folder_mb(d)
    res = dict(bench='phantom', n=a.n, shape=list(a.shape), seed=a.seed,
               workers=a.workers if a.workers is not None else min(os.cpu_count() or 1, a.n),
               seconds=round(secs, 2), seconds_per_case=round(secs/a.n, 3), template_load_seconds=round(t_load, 2),
               megabytes_written=round(mb, 1),
               machine=dict(cores=cores, cpu_count=os.cpu_count(), cpu_model=cpu_model(), platform=platform.platform(),
                            python=platform.python_version(), numpy=np.__version__, scipy=scipy.__version__,
                            load_average_before=load_before, load_average_after=os.getloadavg() if hasattr(os, 'getloadavg') else None),
               when=time.strftime('%Y-%m-%dT%H:%M:%S'))
    print(f"phantom: {a.n} cases {tuple(a.shape)} in {secs:.1f} s ({secs/a.n:.2f} s/case, {res['workers']} workers, "
          f"{cores} cores, {res['machine']['cpu_model']}), {mb:.0f} MB written")
    out = Path(a.out); out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + '\n')
    print(f'wrote {out}')


if __name__ == '__main__': main()
