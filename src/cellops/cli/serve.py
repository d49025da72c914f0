"""``cellops serve TARGET``: the OpenAI-compatible server; ``cellops feedback export``: served
ratings as training rows."""

from __future__ import annotations

import argparse


def add_serve_args(p: argparse.ArgumentParser) -> None:
    """The serve flags (shared with ``%serve start``)."""
    p.add_argument("target", help="a prompt NAME@V, rag:INDEX@V or chain:NAME@V")
    p.add_argument("--b", metavar="TARGET_B", help="a second target for an A/B test")
    p.add_argument("--split", type=float, default=0.5, help="share of users sent to B (sticky per user)")
    p.add_argument("--guard", metavar="POLICY", help="guard policy (default: the workspace's active one; off: none)")
    p.add_argument("--model", help="model URI (default: the prompt's own, else the embedded model)")
    p.add_argument("--input-var", help="the template variable the last user message fills")
    p.add_argument("--rag-prompt", help="answer prompt of a rag: target (default: rag-answer)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1, help="worker processes (each loads the model)")
    p.add_argument("--token-file", help="bearer token file (default: one generated into the workspace)")
    p.add_argument("--name", default="", help="app name (/v1/models id, records; default: the target's name)")
    p.add_argument("--max-tokens-limit", type=int, default=1024, help="refuse requests asking for more")
    p.add_argument("--max-body", type=int, default=1 << 20, help="largest request body in bytes")
    p.add_argument("--per-client", type=int, default=4, help="concurrent requests per client (then 429)")
    p.add_argument("--max-queue", type=int, default=64, help="requests waiting for the model (then 429)")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds before a request is stopped (504)")
    p.add_argument("--cache", action="store_true", help="answer repeated requests from the response cache")


def config_from(a: argparse.Namespace, workspace: str = "") -> object:
    from ..kernels_lib.serving import ServeConfig

    return ServeConfig(a.target, a.name, a.b, a.split, a.guard, a.model, a.input_var, a.rag_prompt,
                       a.host, a.port, a.workers, a.token_file, workspace, a.max_body,
                       a.max_tokens_limit, per_client=a.per_client, max_queue=a.max_queue,
                       timeout_s=a.timeout, cache=a.cache)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="serve a prompt, RAG app or chain over an OpenAI-compatible API")
    add_serve_args(p)
    p.set_defaults(func=_serve)

    f = sub.add_parser("feedback", help="served feedback: export ratings as training rows")
    fsub = f.add_subparsers(dest="feedback_command", metavar="ACTION")
    f.set_defaults(func=lambda a: (f.print_help(), 1)[1])
    e = fsub.add_parser("export", help="ratings and corrected answers of a served app -> JSONL for %%finetune")
    e.add_argument("name", help="the served app (cellops serve --name)")
    e.add_argument("file", help="output .jsonl")
    e.add_argument("--format", choices=("sft", "preference"), default="sft")
    e.set_defaults(func=_export)


def _serve(a: argparse.Namespace) -> int:
    from ..kernels_lib.serving import serve

    serve(config_from(a))  # type: ignore[arg-type]
    return 0


def _export(a: argparse.Namespace) -> int:
    from ..kernels_lib.serving.export import export

    print(export(a.name, a.format, a.file)._repr_mimebundle_()["text/plain"])
    return 0
