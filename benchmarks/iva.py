"""IVA video upload: a 200 MB video streamed from disk to a `volcnb sim` over loopback.

Prints the wall time of the upload (hashing pass + streaming + the simulator's parse), its throughput, the
uploading process's peak RSS (``VmHWM``) before and after, and when the item's callback arrived.
Target: peak RSS under 100 MB for the 200 MB video (the body is never held in memory).

    .venv/bin/python benchmarks/iva.py [--mb 200] [--repeat 1]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import tempfile
import time
from pathlib import Path

import volcnb
from volcnb.sim import DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, SimProcess, write_sample_video

MB = 1024 * 1024


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, MB: ``VmHWM`` (``ru_maxrss`` keeps a forking parent's
    peak across exec, so it is only the fallback)."""
    try:
        with open("/proc/self/status") as fh:
            return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def run(size_mb: int, repeat: int, folder: Path) -> None:
    video = write_sample_video(folder / "clip.mp4", size_mb * MB)
    warm = write_sample_video(folder / "warm.mp4", MB)
    with SimProcess("--max-unfinished", "1000") as server:
        client = volcnb.Client(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, endpoint=server.url, timeout=120)
        async with volcnb.callbacks.serve() as cb:
            volcnb.backend(client).configure(iva_callback=cb.url, max_video_bytes=1024 * MB)
            await (await client.iva.add_video("bench-task", warm, display=False))  # imports, pools, first connection
            before = peak_rss_mb()
            print(f"video {video.stat().st_size / MB:.0f} MB; peak RSS before the upload {before:.1f} MB")
            for i in range(repeat):
                start = time.perf_counter()
                up = await client.iva.add_video("bench-task", video, display=False)
                uploaded = time.perf_counter() - start
                facts = await up.wait(timeout=120)
                called = time.perf_counter() - start
                print(f"run {i + 1}: upload {uploaded:.2f} s ({size_mb / uploaded:.0f} MB/s), callback after "
                      f"{called:.2f} s ({facts['Container']}, {facts['Bytes'] / MB:.0f} MB, "
                      f"{facts.get('DurationSeconds')} s); peak RSS {peak_rss_mb():.1f} MB")
        await client.aclose()
    peak = peak_rss_mb()
    print(f"peak RSS of the uploading process: {peak:.1f} MB (growth {peak - before:.1f} MB); target < 100 MB: "
          f"{'met' if peak < 100 else 'MISSED'}")


def main() -> None:
    """Parse the arguments and run."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mb", type=int, default=200, help="video size in MB (default 200)")
    p.add_argument("--repeat", type=int, default=1, help="uploads of the same file (default 1)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(args.mb, args.repeat, Path(tmp)))


if __name__ == "__main__":
    main()
