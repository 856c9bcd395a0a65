"""The GPU path's choices and fallbacks, in Chromium with its software WebGPU adapter (SwiftShader,
`--enable-unsafe-webgpu --enable-unsafe-swiftshader --enable-features=Vulkan`), on real music with
the real model. The diagnostic switch (chrome.storage.local `diagnostics.gpu`, docs/architecture.md)
lets the engine take the software adapter and breaks the GPU on purpose; every job must still end
with the right stems, from the CPU, and say why. SwiftShader runs a segment about 75 times slower
than WASM here (docs/benchmarks.md, "WebGPU": 13 minutes a segment), so one job of one segment runs
on it whole, and the fallback tests stop the GPU before it computes."""

from __future__ import annotations

import subprocess
import sys

import pytest
from support.audio import load_clip, mixture, read_stem, write_song
from support.chromium import REPO, ExtensionBrowser, start_job, wait_for_files, wait_for_job

from pycore.metrics import sdr

JOB_TIMEOUT = 600
GPU_JOB_TIMEOUT = 30 * 60  # one segment on SwiftShader (13 min here), then the same on WASM to check it
STEMS = ("drums", "bass", "other", "vocals")
SWIFTSHADER = ("--enable-unsafe-webgpu", "--enable-unsafe-swiftshader", "--enable-features=Vulkan")


@pytest.fixture(scope="module")
def gpu_browser(playwright_instance, bundle, tmp_path_factory):
    b = ExtensionBrowser(playwright_instance, bundle, tmp_path_factory.mktemp("chromium-gpu"), extra_args=SWIFTSHADER)
    yield b
    b.close()


@pytest.fixture(scope="module")
def clip_and_cli(lithium, tmp_path_factory):
    """A clip of one model segment (5 s: shorter than the segments' stride), its true stems, and the
    command line's SDR for each."""
    folder = tmp_path_factory.mktemp("gpu-clip")
    truth = load_clip(lithium, seconds=5, start=16)
    path = write_song(folder / "clip.wav", mixture(truth))
    subprocess.run([sys.executable, "-m", "pycore", "separate", str(path), "-o", str(folder / "native"), "--format", "float32"],
                   check=True, cwd=REPO)
    native = {s: sdr(truth[s], read_stem(folder / "native" / "clip" / f"{s}.wav")[0]) for s in STEMS}
    return path, (truth, native)


def run_job(browser, clip, name: str, gpu: str = "auto", diagnostics: dict | None = None,
            timeout: float = JOB_TIMEOUT) -> tuple[dict, dict]:
    """One job of `clip` (copied under `name`), with the GPU setting and the diagnostic switch given;
    returns the stored job and its popup row."""
    popup = browser.open_popup()
    popup.evaluate("(d) => chrome.storage.local.set({diagnostics: d})", {"gpu": diagnostics} if diagnostics else {})
    path = clip.with_name(name)
    path.write_bytes(clip.read_bytes())
    popup.select_option("#gpu", gpu)
    start_job(popup, [path], stems="four", fmt="float32")  # float: compared with the command line's to rounding
    row = wait_for_job(popup, path.name, {"done", "failed", "cancelled"}, timeout)
    assert row["status"] == "done", row["text"]
    job = next(j for j in popup.evaluate("() => chrome.storage.local.get('jobs')")["jobs"] if j["name"] == path.name)
    popup.close()
    return job, row


def check_stems(browser, job, cli) -> None:
    """The job's stems score as the command line's do (mean SDR within 0.1 dB, as the separation tests ask)."""
    truth, native = cli
    folder = browser.downloads / "Demixer" / job["folder"]
    scores = {p.stem: sdr(truth[p.stem], read_stem(p)[0]) for p in wait_for_files(folder, [f"{s}.wav" for s in STEMS], 30)}
    mean = lambda d: sum(d.values()) / len(d)  # noqa: E731
    assert abs(mean(scores) - mean(native)) <= 0.1, (scores, native)


def test_software_adapter_is_offered(gpu_browser):
    popup = gpu_browser.open_popup()
    info = popup.evaluate(
        "async () => { const a = await navigator.gpu?.requestAdapter(); return a && {...a.info.toJSON?.() ?? {vendor: a.info.vendor, architecture: a.info.architecture}, fallback: a.info.isFallbackAdapter}; }"
    )
    popup.close()
    print("\nadapter:", info)
    assert info and info["fallback"], info  # otherwise the tests below would prove nothing


def test_a_job_on_the_gpu(gpu_browser, clip_and_cli):
    """The whole model on WebGPU (SwiftShader), checked against WASM on its (only) segment."""
    clip, cli = clip_and_cli
    job, row = run_job(gpu_browser, clip, "on the gpu.wav", diagnostics={"software": True}, timeout=GPU_JOB_TIMEOUT)
    t = job["timings"]
    print("\ntimings:", {k: t.get(k) for k in ("backend", "device", "gpu_refused", "gpu_agreement_db", "gpu_agreement_by_source",
                                              "separate", "model_segments")}, "| row:", row["text"])
    assert t["backend"] == "webgpu" and t["device"] == "GPU: google swiftshader", t
    assert "gpu_refused" not in t, t
    assert len(t["model_segments"]) == 1, t["model_segments"]
    by_source = t["gpu_agreement_by_source"]
    assert set(by_source) == set(STEMS) and min(by_source.values()) >= 40, by_source
    assert "GPU: google swiftshader" in row["text"], row["text"]
    check_stems(gpu_browser, job, cli)


def test_never_keeps_the_gpu_path_off(gpu_browser, clip_and_cli):
    clip, cli = clip_and_cli
    # The switch would let the engine take the software adapter: Never must not even try it.
    job, row = run_job(gpu_browser, clip, "never.wav", gpu="never", diagnostics={"software": True})
    t = job["timings"]
    print("\ntimings:", {k: t.get(k) for k in ("backend", "device", "gpu_refused", "gpu_failed", "gpu_agreement_db")})
    assert t["backend"] == "wasm" and t["device"].startswith("CPU: "), t
    assert t["gpu_refused"] == "not tried (Use the GPU: Never)", t
    assert "gpu_failed" not in t and "gpu_agreement_db" not in t, t
    assert job["device"] in row["text"], row["text"]
    check_stems(gpu_browser, job, cli)


def test_a_gpu_that_cannot_load_the_model_leaves_the_job_to_the_cpu_and_later_jobs_too(gpu_browser, clip_and_cli):
    clip, cli = clip_and_cli
    job, row = run_job(gpu_browser, clip, "load fails.wav", diagnostics={"software": True, "fail": "load"})
    t = job["timings"]
    print("\ntimings:", {k: t.get(k) for k in ("backend", "device", "gpu_refused", "gpu_failed")}, "| row:", row["text"])
    assert t["backend"] == "wasm" and t["gpu_failed"] is True, t
    assert t["gpu_refused"].startswith("the GPU could not load the model (made to fail by the diagnostic switch"), t
    assert "used the CPU" in row["text"], row["text"]
    check_stems(gpu_browser, job, cli)
    # The next job does not try that GPU again in this browser session (the switch would let it).
    job, _ = run_job(gpu_browser, clip, "after a failure.wav", diagnostics={"software": True})
    assert job["timings"]["gpu_refused"].startswith("not tried again: earlier in this browser session the GPU could not load"), job["timings"]
    check_stems(gpu_browser, job, cli)


def test_a_lost_gpu_device_leaves_the_job_to_the_cpu(gpu_browser, clip_and_cli):
    clip, cli = clip_and_cli
    popup = gpu_browser.open_popup()
    popup.evaluate("chrome.storage.session.remove('gpuRefused')")  # a new browser session, as far as the GPU goes
    popup.close()
    job, row = run_job(gpu_browser, clip, "device lost.wav", diagnostics={"software": True, "fail": "lost"})
    t = job["timings"]
    print("\ntimings:", {k: t.get(k) for k in ("backend", "device", "gpu_refused", "gpu_failed")}, "| row:", row["text"])
    assert t["backend"] == "wasm" and t["gpu_failed"] is True, t
    assert "lost" in t["gpu_refused"] or "failed on the first segment" in t["gpu_refused"], t
    check_stems(gpu_browser, job, cli)
