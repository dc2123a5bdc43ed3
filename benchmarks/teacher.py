"""Teacher client throughput: synth's vllm_server client vs a plain concurrent baseline.

1. Against a real vLLM CPU server (from `.venv-vllm`, serving a tiny random Qwen2 built on the
   spot): requests/s of `VllmServerTeacher.generate` vs a plain `aiohttp` session +
   `asyncio.gather` with the same concurrency and the same request bodies, alternating runs in
   the same process. Every request generates exactly `max_tokens` tokens (`ignore_eos`), so both
   ask the engine for the same work. Aim: the client reaches >= 90% of the baseline.
2. Client overhead: the same two clients against a local HTTP server (another process, asyncio
   protocol, answers instantly with a fixed completion). Aim: >= 1,000 requests/s; the client's
   CPU time per request is reported too (its event loop is one thread, so this is one core).
   For reference, plain `httpx.AsyncClient` + gather is timed once on the same server: it is why
   the client uses aiohttp.

Run: .venv/bin/python benchmarks/teacher.py [--requests 256] [--skip-vllm]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from synth.adapters.base import TeacherRequest  # noqa: E402
from synth.adapters.vllm_server import ClientSettings, VllmServerTeacher, request_body  # noqa: E402

VLLM_PYTHON = REPO / ".venv-vllm" / "bin" / "python"
ENGINE_ARGS = ["--max-model-len", "512", "--dtype", "bfloat16", "--enforce-eager", "--no-enable-chunked-prefill"]
SERVER_ENV = {"VLLM_CPU_KVCACHE_SPACE": "1", "HF_HUB_OFFLINE": "1"}


def make_requests(count: int, max_tokens: int) -> list[TeacherRequest]:
    return [TeacherRequest(request_id=f"r{i}", system="You count objects.", user=f"How many coins? ({i})",
                           n=1, sampling={"temperature": 1.0, "max_tokens": max_tokens, "seed": i,
                                          "ignore_eos": True})
            for i in range(count)]


async def baseline(base_url: str, bodies: list[bytes], concurrency: int) -> int:
    """Plain aiohttp + gather + semaphore; returns the number of 200 responses."""
    import aiohttp

    semaphore = asyncio.Semaphore(concurrency)
    headers = {"Content-Type": "application/json"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency), headers=headers) as client:
        async def one(body: bytes) -> bool:
            async with semaphore:
                async with client.post(f"{base_url}/chat/completions", data=body) as response:
                    json.loads(await response.read())
                    return response.status == 200

        return sum(await asyncio.gather(*(one(b) for b in bodies)))


async def httpx_baseline(base_url: str, bodies: list[bytes], concurrency: int) -> int:
    """The same with httpx.AsyncClient, for reference."""
    import httpx

    semaphore = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=600, limits=limits,
                                 headers={"Content-Type": "application/json"}) as client:
        async def one(body: bytes) -> bool:
            async with semaphore:
                response = await client.post(f"{base_url}/chat/completions", content=body)
            response.json()
            return response.status_code == 200

        return sum(await asyncio.gather(*(one(b) for b in bodies)))


def time_baseline(base_url: str, model: str, requests: list[TeacherRequest], concurrency: int, plain=baseline):
    settings = ClientSettings(return_token_ids=True)
    bodies = [request_body(r, model, settings) for r in requests]
    started, cpu = time.perf_counter(), time.process_time()
    ok = asyncio.run(plain(base_url, bodies, concurrency))
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    assert ok == len(requests), f"baseline: {len(requests) - ok} requests failed"
    return len(requests) / wall, cpu / len(requests)


def time_client(teacher: VllmServerTeacher, requests: list[TeacherRequest]):
    started, cpu = time.perf_counter(), time.process_time()
    out = teacher.generate(requests)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    failed = [r.error for r in out if r.error]
    assert not failed, f"client: {len(failed)} requests failed, e.g. {failed[0]}"
    return len(requests) / wall, cpu / len(requests)


def compare(base_url: str, requests: list[TeacherRequest], concurrency: int, rounds: int) -> dict:
    teacher = VllmServerTeacher(ClientSettings(base_url=base_url, concurrency=concurrency))
    teacher.setup()
    time_client(teacher, requests[: max(8, concurrency)])  # warm-up: connections, server caches
    ours, theirs = [], []
    for _ in range(rounds):  # alternate, so drift in the machine's load hits both alike
        theirs.append(time_baseline(base_url, teacher.model_name, requests, concurrency))
        ours.append(time_client(teacher, requests))
    teacher.close()
    ours_rps = statistics.median(r for r, _ in ours)
    base_rps = statistics.median(r for r, _ in theirs)
    return {"client_rps": ours_rps, "baseline_rps": base_rps, "ratio": ours_rps / base_rps,
            "client_cpu_ms_per_request": 1000 * statistics.median(c for _, c in ours),
            "baseline_cpu_ms_per_request": 1000 * statistics.median(c for _, c in theirs)}


# --- a local server that answers instantly -------------------------------------------------------

COMPLETION = json.dumps({
    "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "3"}}],
    "usage": {"prompt_tokens": 10, "completion_tokens": 1},
}).encode()
MODELS = json.dumps({"data": [{"id": "instant"}]}).encode()


class InstantProtocol(asyncio.Protocol):
    """HTTP/1.1 keep-alive: answer every request at once (models list or a fixed completion)."""

    def connection_made(self, transport):
        self.transport, self.buffer = transport, b""

    def data_received(self, data):
        self.buffer += data
        while True:
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = self.buffer[:head_end].decode("latin-1")
            length = 0
            for line in head.split("\r\n")[1:]:
                if line.lower().startswith("content-length:"):
                    length = int(line.split(":", 1)[1])
            if len(self.buffer) < head_end + 4 + length:
                return
            self.buffer = self.buffer[head_end + 4 + length:]
            body = MODELS if " /v1/models " in head.split("\r\n", 1)[0] + " " else COMPLETION
            self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                                 + str(len(body)).encode() + b"\r\n\r\n" + body)


def serve_instant(port_queue) -> None:
    async def main():
        server = await asyncio.get_running_loop().create_server(InstantProtocol, "127.0.0.1", 0)
        port_queue.put(server.sockets[0].getsockname()[1])
        await server.serve_forever()

    asyncio.run(main())


def build_tiny_model(out: Path) -> None:
    subprocess.run([str(VLLM_PYTHON), str(REPO / "tests" / "fixtures" / "tiny_models.py"), str(out)],
                   check=True, capture_output=True)


def bench_vllm(args) -> None:
    from synth.adapters.vllm_process import OwnedVllmServer

    with tempfile.TemporaryDirectory() as tmp:
        build_tiny_model(Path(tmp) / "model")
        server = OwnedVllmServer(str(VLLM_PYTHON), str(Path(tmp) / "model"), ENGINE_ARGS, env=SERVER_ENV,
                                 log_path=Path(tmp) / "vllm_server.log")
        started = time.perf_counter()
        server.start(health_timeout_s=300)
        print(f"vLLM CPU server healthy in {time.perf_counter() - started:.0f} s")
        try:
            requests = make_requests(args.requests, args.max_tokens)
            result = compare(server.base_url, requests, args.concurrency, args.rounds)
        except Exception:
            print(f"vLLM server log:\n{(Path(tmp) / 'vllm_server.log').read_text()}")
            raise
        finally:
            server.stop()
    print(f"real vLLM server, {args.requests} requests x {args.max_tokens} tokens, concurrency "
          f"{args.concurrency}, median of {args.rounds}:")
    print(f"  baseline (aiohttp+gather): {result['baseline_rps']:8.1f} req/s")
    print(f"  synth client:              {result['client_rps']:8.1f} req/s")
    print(f"  ratio:                     {result['ratio']:8.1%}  (aim >= 90%)")


def bench_instant(args) -> None:
    queue = multiprocessing.Queue()
    process = multiprocessing.Process(target=serve_instant, args=(queue,), daemon=True)
    process.start()
    try:
        base_url = f"http://127.0.0.1:{queue.get(timeout=10)}/v1"
        requests = make_requests(args.instant_requests, 1)
        result = compare(base_url, requests, args.concurrency, args.rounds)
        httpx_rps, httpx_cpu = time_baseline(base_url, "instant", requests[:1000], args.concurrency,
                                             plain=httpx_baseline)
    finally:
        process.terminate()
        process.join()
    print(f"instant local server, {args.instant_requests} requests, concurrency {args.concurrency}:")
    print(f"  httpx + gather (reference):{httpx_rps:8.0f} req/s, {1000 * httpx_cpu:.3f} ms CPU/request")
    print(f"  baseline (aiohttp+gather): {result['baseline_rps']:8.0f} req/s, "
          f"{result['baseline_cpu_ms_per_request']:.3f} ms CPU/request")
    print(f"  synth client:              {result['client_rps']:8.0f} req/s, "
          f"{result['client_cpu_ms_per_request']:.3f} ms CPU/request  (aim >= 1,000 req/s)")
    print(f"  ratio:                     {result['ratio']:8.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=256, help="requests per run against vLLM")
    parser.add_argument("--max-tokens", type=int, default=32, help="tokens generated per request")
    parser.add_argument("--concurrency", type=int, default=64, help="requests in flight, both clients")
    parser.add_argument("--rounds", type=int, default=3, help="alternating runs of each client")
    parser.add_argument("--instant-requests", type=int, default=5000, help="requests per instant-server run")
    parser.add_argument("--skip-vllm", action="store_true", help="only the instant-server part")
    args = parser.parse_args()
    bench_instant(args)
    if args.skip_vllm:
        return
    if not VLLM_PYTHON.exists():
        sys.exit(f"{VLLM_PYTHON} is absent: create it with `bash scripts/setup_vllm.sh`, or pass --skip-vllm")
    bench_vllm(args)


if __name__ == "__main__":
    main()
