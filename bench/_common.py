"""What the benchmarks share: the machine they ran on, and a memory setting."""
import ctypes, platform
from pathlib import Path

def cpu_model():
    "The CPU's model name, from /proc/cpuinfo where there is one."
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('model name'): return line.split(':', 1)[1].strip()
    except OSError: pass
    return platform.processor() or platform.machine()

def tune_malloc():
    "Keep freed memory in glibc's heap instead of returning it to the kernel, so big tensors stop costing page faults on every step."
    try: libc = ctypes.CDLL('libc.so.6')
    except OSError: return False
    M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4  # never trim the heap; no mmap-ed chunks (they go back to the kernel on free)
    return all(libc.mallopt(k, v) == 1 for k, v in [(M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, 2**31 - 1)])
