"""What the benchmarks share: the machine they ran on, and a memory setting."""
import platform
from pathlib import Path

def cpu_model():
    "The CPU's model name, from /proc/cpuinfo where there is one."
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('model name'): return line.split(':', 1)[1].strip()
    except OSError: pass
    return platform.processor() or platform.machine()

from mriseg.cli import keep_freed_memory as tune_malloc  # what the `mriseg` command does for train, predict, demo
