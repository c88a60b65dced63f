"""``edgeagent keys generate NAME...``: CurveZMQ key pairs for the service, workstation and clients."""

from __future__ import annotations


def add_parser(sub) -> None:
    p = sub.add_parser("keys", help="manage CurveZMQ keys")
    ksub = p.add_subparsers(dest="keys_command", metavar="ACTION")
    g = ksub.add_parser("generate", help="write NAME.key (public, share it) and NAME.key_secret (keep it private)")
    g.add_argument("names", nargs="+", metavar="NAME", help="one key pair per name, e.g. robot workstation laptop")
    g.add_argument("--dir", default=".", help="folder for the key files (default: the current one)")
    g.set_defaults(func=generate)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def generate(args) -> int:
    import os
    from pathlib import Path

    import zmq.auth

    from edgeagent.errors import ConfigError

    folder = Path(args.dir)
    folder.mkdir(parents=True, exist_ok=True)
    for name in args.names:
        if not name or "/" in name or name.startswith("."):
            raise ConfigError(f"key name {name!r}: use a plain file name such as 'robot'")
        existing = [f for f in (folder / f"{name}.key", folder / f"{name}.key_secret") if f.exists()]
        if existing:
            raise ConfigError(f"{existing[0]} exists; refusing to overwrite a key (delete it first to replace it)")
    for name in args.names:
        public_file, secret_file = zmq.auth.create_certificates(str(folder), name)
        os.chmod(secret_file, 0o600)  # the secret key is a credential
        public, _ = zmq.auth.load_certificate(public_file)
        print(f"{name}: public {public_file} (share: allow-lists, server_key)  secret {secret_file} (keep private)  "
              f"key {public.decode()}")
    return 0
