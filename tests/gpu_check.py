"""`make gpu-check`: the project's self-test on a user's GPU. Prints torch, CUDA and cuDNN versions and the GPU, then
runs tests/test_cuda.py (every figure's smoke preset on CUDA with its time and synchronisations, TF32 really off,
three figures twice byte for byte, the break-point engines against the CPU). Without a GPU: one line, exit 0."""
import subprocess
import sys
from pathlib import Path

import torch

TESTS = Path(__file__).with_name("test_cuda.py")


def main() -> int:
    if not torch.cuda.is_available():
        out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                              str(TESTS)], capture_output=True, text=True).stdout.strip().splitlines()
        count = next((line.split()[0] for line in reversed(out) if "collected" in line), "?")
        print(f"gpu-check: no CUDA GPU on this machine (torch {torch.__version__}, CUDA build "
              f"{torch.version.cuda or 'none'}): nothing to check; its {count} CUDA tests are collected and skipped")
        return 0
    print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}, "
          f"{torch.cuda.device_count()} GPU(s): {torch.cuda.get_device_name()}")
    return int(subprocess.call([sys.executable, "-m", "pytest", "-q", "-rs", "-s", "-p", "no:randomly", str(TESTS)]))


if __name__ == "__main__":
    sys.exit(main())
