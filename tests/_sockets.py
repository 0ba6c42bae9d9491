"""Which TCP ports a process tree listens on, and what each one answers to a client without credentials.

``listening(root)`` lists (pid, ip, port) of every listening TCP socket of ``root`` and its descendants (psutil
when installed, else /proc/net/tcp{,6} matched to the processes' socket inodes). ``probe(ip, port)`` says what a
client with no password and no certificate gets:

* ``"tls-refused"``: a TLS server that does not complete a session without a client certificate it trusts;
* ``"http-401"``: plain HTTP that answers 401 to an API request without credentials;
* anything else (``"http-200"``, ``"tls-open"``, ``"no-http"``...) is unprotected.
"""
from __future__ import annotations

import os
import socket
import ssl
from pathlib import Path

PROTECTED = ("tls-refused", "http-401")
LOOPBACK_V4 = "127."
LOOPBACK_V6 = ("::1", "::ffff:127.")


def is_loopback(ip: str) -> bool:
    return ip.startswith(LOOPBACK_V4) or ip.startswith(LOOPBACK_V6)


def _tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    pids, todo = [], [root]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        todo.extend(children.get(pid, []))
    return pids


def _proc_listeners(root: int) -> set[tuple[int, str, int]]:
    """Parse /proc/net/tcp{,6} (state 0A = LISTEN) and match socket inodes to the tree's file descriptors."""
    by_inode: dict[str, tuple[str, int]] = {}
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] != "0A":
                continue
            address, port = fields[1].split(":")
            raw = bytes.fromhex(address)
            if width == 8:
                ip = socket.inet_ntop(socket.AF_INET, raw[::-1])
            else:  # four little-endian 32-bit words
                ip = socket.inet_ntop(socket.AF_INET6, b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4)))
            by_inode[fields[9]] = (ip, int(port, 16))
    found = set()
    for pid in _tree(root):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in by_inode:
                found.add((pid, *by_inode[target[8:-1]]))
    return found


def listening(root: int) -> set[tuple[int, str, int]]:
    """(pid, ip, port) of every listening TCP socket in the process tree of ``root``."""
    try:
        import psutil
    except ImportError:
        return _proc_listeners(root)
    found = set()
    try:
        processes = [psutil.Process(root), *psutil.Process(root).children(recursive=True)]
    except psutil.Error:
        return found
    for process in processes:
        try:
            for conn in process.net_connections(kind="tcp"):
                if conn.status == psutil.CONN_LISTEN:
                    found.add((process.pid, conn.laddr.ip, conn.laddr.port))
        except psutil.Error:
            continue
    return found


def probe(ip: str, port: int, timeout: float = 5.0) -> str:
    """What a client without credentials gets from ``ip:port`` (see the module docstring)."""
    host = "127.0.0.1" if ip in ("0.0.0.0", "::") else ip
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE

    def refusal(exc: ssl.SSLError) -> bool:
        return "CERTIFICATE_REQUIRED" in str(exc) or "ALERT" in str(exc).upper()

    try:
        with socket.create_connection((host, port), timeout=timeout) as raw:
            try:
                tls = context.wrap_socket(raw)
            except ssl.SSLError as exc:
                if refusal(exc):
                    return "tls-refused"
                tls = None  # not TLS (an HTTP server answers the hello with text): try HTTP below
            except OSError:
                tls = None  # hung up on the hello: try HTTP below
            if tls is not None:
                # TLS 1.3 completes the handshake before the server checks the client's certificate; a server
                # that requires one then ends the session, one that does not waits for our data
                try:
                    tls.sendall(b"\0" * 8)
                    return "tls-open" if tls.recv(16) else "tls-refused"
                except (ssl.SSLEOFError, ssl.SSLZeroReturnError):
                    return "tls-refused"  # the server ended the session without a word
                except ssl.SSLError as exc:
                    return "tls-refused" if refusal(exc) else f"tls-error:{str(exc)[:60]}"
                except socket.timeout:
                    return "tls-open"
                except ConnectionError:
                    return "tls-refused"
    except OSError as exc:
        return f"closed:{type(exc).__name__}"
    request = (f"POST /api/artifacts/filter HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
               "Content-Length: 2\r\nConnection: close\r\n\r\n{}").encode()
    try:
        with socket.create_connection((host, port), timeout=timeout) as plain:
            plain.sendall(request)
            head = plain.recv(64)
    except OSError as exc:
        return f"no-http:{type(exc).__name__}"
    if head.startswith(b"HTTP/"):
        return f"http-{head.split()[1].decode(errors='replace')}"
    return "no-http"


def probe_token_line(ip: str, port: int, timeout: float = 8.0) -> str:
    """Prefect's runner control channel (``prefect/runner/_control_channel.py``) reads one token line and hangs up
    on a token it did not hand out: ``"token-refused"`` when a wrong token gets the connection closed."""
    with socket.create_connection((ip, port), timeout=timeout) as conn:
        conn.sendall(b"0123456789abcdef0123456789abcdef\n")
        try:
            data = conn.recv(64)
        except ConnectionError:
            return "token-refused"
    return "token-refused" if data == b"" else f"token-open:{data[:20]!r}"


def survey(root: int, exclude: set[tuple[str, int]] = frozenset()) -> list[dict]:
    """Every listening socket of ``root``'s tree (minus ``exclude`` (ip, port) pairs), with what it answers."""
    return [{"pid": pid, "ip": ip, "port": port, "answer": probe(ip, port)}
            for pid, ip, port in sorted(listening(root)) if (ip, port) not in exclude]


def unprotected(found: list[dict]) -> list[dict]:
    """The sockets of ``survey`` that are off loopback or answer a client without credentials."""
    return [s for s in found if not is_loopback(s["ip"]) or s["answer"] not in PROTECTED]


def survey_item(root: int, exclude: tuple[tuple[str, int], ...] = ()) -> dict:
    """A unit of work for the executors: surveys ``root``'s tree from wherever the engine runs it, while the
    engine (its servers, scheduler and workers) is up."""
    return {"sockets": survey(root, set(exclude)), "pid": os.getpid()}


def ports(root: int) -> set[tuple[str, int]]:
    """(ip, port) pairs ``root``'s tree listens on now (a baseline to exclude from a later survey)."""
    return {(ip, port) for _, ip, port in listening(root)}
