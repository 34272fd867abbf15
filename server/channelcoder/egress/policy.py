"""Where the sandbox may connect through the egress proxy: host patterns, and never the host.

A host pattern is `example.com` (ports 443 and 80), `*.example.com` (any subdomain, not the
domain itself), `host:port`, `[v6::addr]:port`, or the preset `registries`. However a name
resolves, an address that leads back to this machine or its networks — loopback, link-local,
private, shared (CGNAT), multicast, unspecified, reserved, cloud metadata, and the IPv4-mapped
or NAT64 forms of these — is refused, unless a pattern names that literal address *and* port
(a test's loopback upstream, the scripted model). Every address a name has is checked, and the
proxy connects to the address it checked: no second lookup.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field

import anyio

from ..errors import ConfigError

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

PRESETS: dict[str, tuple[str, ...]] = {
    "registries": (
        "pypi.org", "files.pythonhosted.org", "registry.npmjs.org", "registry.yarnpkg.com",
        "deb.debian.org", "security.debian.org", "crates.io", "static.crates.io",
        "index.crates.io", "github.com", "api.github.com", "codeload.github.com",
        "objects.githubusercontent.com", "raw.githubusercontent.com",
        "release-assets.githubusercontent.com",
    ),
}
DEFAULT_PORTS = (443, 80)
METADATA = (ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254"))
CGNAT = ipaddress.ip_network("100.64.0.0/10")
NAT64 = ipaddress.ip_network("64:ff9b::/96")


@dataclass(frozen=True)
class Pattern:
    host: str                # lower case; "*.example.com" for subdomains
    port: int | None = None  # None: the default ports

    def matches(self, host: str, port: int) -> bool:
        if self.port is None and port not in DEFAULT_PORTS:
            return False
        if self.port is not None and port != self.port:
            return False
        if self.host.startswith("*."):
            return host.endswith(self.host[1:])
        return host == self.host

    @property
    def literal(self) -> Address | None:
        try:
            return ipaddress.ip_address(self.host)
        except ValueError:
            return None

    def __str__(self) -> str:
        if self.port is None:
            return self.host
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_pattern(text: str) -> Pattern:
    """One allowlist entry; a ConfigError names a bad one."""
    raw = text.strip().lower()
    host, port_text = raw, ""
    if raw.startswith("["):
        host, _, rest = raw[1:].partition("]")
        if rest and not rest.startswith(":"):
            host = ""
        port_text = rest[1:]
    elif raw.count(":") == 1:
        host, _, port_text = raw.partition(":")
    port: int | None = None
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ConfigError(f"network allowlist: {text!r} has no valid port",
                              hint="write host:port, e.g. registry.example.com:8443")
        port = int(port_text)
    host = host.rstrip(".")
    if (not host or any(c in host for c in "/ @?#") or "*" in host.lstrip("*")
            or (host.startswith("*") and not host.startswith("*."))):
        raise ConfigError(f"network allowlist: {text!r} is not a host pattern",
                          hint="use example.com, *.example.com, host:port or 'registries'")
    return Pattern(host, port)


def forbidden(address: Address) -> str | None:
    """Why connecting to `address` would reach this machine or its networks, or None."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        elif address in NAT64:
            address = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in METADATA:
        return "a cloud metadata address"
    if address.is_loopback:
        return "a loopback address (this machine)"
    if address.is_link_local:
        return "a link-local address"
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_multicast:
        return "a multicast address"
    if isinstance(address, ipaddress.IPv4Address) and address in CGNAT:
        return "a shared (CGNAT) address"
    if address.is_private or address.is_reserved:
        return "a private address (your network)"
    return None


@dataclass
class Policy:
    """The allowlist of one proxy; `allow()` widens it (an editor's "Allow")."""

    patterns: list[Pattern] = field(default_factory=list)

    @classmethod
    def build(cls, allow: Iterable[str], api_hosts: Iterable[str] = ()) -> Policy:
        """The API hosts (always allowed) and the user's entries; `registries` is a preset."""
        patterns: list[Pattern] = []
        for item in [*api_hosts, *allow]:
            name = item.strip().lower()
            if name in PRESETS:
                patterns += [Pattern(h) for h in PRESETS[name]]
            elif name:
                patterns.append(parse_pattern(name))
        return cls(list(dict.fromkeys(patterns)))

    def allows(self, host: str, port: int) -> bool:
        host = host.strip("[]").lower().rstrip(".")
        return any(p.matches(host, port) for p in self.patterns)

    def allow(self, host: str, port: int) -> None:
        self.patterns.append(Pattern(host.strip("[]").lower().rstrip("."), port))

    def literal_permitted(self, address: Address, port: int) -> bool:
        """A pattern that names exactly this address and port lets it through."""
        return any(p.literal == address and p.port == port for p in self.patterns)

    def describe(self) -> list[str]:
        return [str(p) for p in self.patterns]


async def resolve_checked(policy: Policy, host: str, port: int) -> tuple[str | None, str]:
    """The address to connect to, or None and why not.

    Every address the name has is checked; one forbidden address refuses the name, so a name
    that answers with a public and a private address cannot pick which one is used.
    """
    host = host.strip("[]")
    try:
        addresses: list[Address] = [ipaddress.ip_address(host)]
        literal = True
    except ValueError:
        literal = False
        try:
            infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            return None, f"{host} does not resolve"
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
        if not addresses:
            return None, f"{host} has no address"
    for address in addresses:
        why = forbidden(address)
        if why and not policy.literal_permitted(address, port):
            return None, why if literal else f"{host} resolves to {why}"
    ipv4 = [a for a in addresses if a.version == 4]
    return str((ipv4 or addresses)[0]), ""
